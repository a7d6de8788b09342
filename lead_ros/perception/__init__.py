"""What LTFv6 perceived: the BEV semantic map and the CenterNet vehicle boxes (pure core)."""
