"""The camera layout LTFv6 was trained with: the one home of camera names and their order.

NAVSIM's LTFv6 sees four nuPlan cameras, stitched left to right as [l0 | f0 | r0 | b0] into a
1920-pixel-wide model input (one 480-pixel slot each); the front camera f0 anchors a frame
(its stamp is the frame's, and it is never filled black). A node in ``stitched`` mode takes
that model input ready-made as one image, named ``image``.

Every other module takes names, the anchor, the side cameras, the stitch order and the
widths from here (a fifth camera, or the six-camera checkpoints LEAD has announced, is a
change of ``NAVSIM_LAYOUT``). Standard library only: the node's topic table, which the
launch file imports under the system Python, builds its camera topics from it. The image
errors live here too, since every stage from the intake to the preprocessing raises them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CameraLayout:
    """Cameras in stitch order (left to right in the model input), the anchor among them,
    and the model input's width."""

    names: tuple[str, ...]
    anchor: str
    model_width: int

    @property
    def side_cameras(self) -> tuple[str, ...]:
        """The cameras other than the anchor, in stitch order (these may be filled black)."""
        return tuple(name for name in self.names if name != self.anchor)

    @property
    def slot_width(self) -> int:
        """The width of one camera's slot in the model input."""
        return self.model_width // len(self.names)

    def index(self, name: str) -> int:
        """A camera's slot, counted from the left."""
        return self.names.index(name)


NAVSIM_LAYOUT = CameraLayout(names=("l0", "f0", "r0", "b0"), anchor="f0", model_width=1920)
# The single input of camera_mode ``stitched``: the model input, already stitched.
STITCHED_IMAGE = "image"

CAMERA_NAMES = NAVSIM_LAYOUT.names
ANCHOR_CAMERA = NAVSIM_LAYOUT.anchor
SIDE_CAMERAS = NAVSIM_LAYOUT.side_cameras
MODEL_IMAGE_WIDTH = NAVSIM_LAYOUT.model_width
CAMERA_SLOT_WIDTH = NAVSIM_LAYOUT.slot_width


def camera_inputs(camera_mode: str) -> tuple[str, ...]:
    """The camera inputs of a ``camera_mode``: the layout's cameras, or the stitched image."""
    return (STITCHED_IMAGE,) if camera_mode == "stitched" else CAMERA_NAMES


def anchor_input(camera_mode: str) -> str:
    """The input whose stamp a frame takes: the anchor camera, or the stitched image."""
    return STITCHED_IMAGE if camera_mode == "stitched" else ANCHOR_CAMERA


def is_anchor(name: str) -> bool:
    """Whether a camera input anchors frames in its mode (it is never filled black)."""
    return name in (ANCHOR_CAMERA, STITCHED_IMAGE)


class ImageInputError(ValueError):
    """An image that cannot become a model input; the message names it and what was expected."""


class CorruptImageError(ImageInputError):
    """Compressed data that decodes only because the decoder repaired it (libjpeg's
    recoverable errors: a damaged entropy-coded segment, a premature end): part of the
    picture is invented, so the frame is not planned."""
