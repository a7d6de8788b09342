"""The command line (``lead-ros``) and what only it uses: the demo, the core, node and bag
benchmarks, the self-test and the synthetic camera pattern. The top layer: it may import
everything below it (bag, ros, the core); nothing imports it."""
