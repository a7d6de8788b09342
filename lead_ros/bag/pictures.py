"""Contact sheet (PNG) and video (MP4) of evaluated frames, with bounded memory: the
video is written frame by frame and the sheet keeps an evenly thinned set of thumbnails.
Frames with a logged future show it beside the plan; ``metrics.png`` plots the errors over
the drive (matplotlib, headless)."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lead_ros.perception.outputs import Box
from lead_ros.visualization import render_plan

SHEET_COLUMNS = 3
SHEET_MAX_FRAMES = 12
VIDEO_SCALE = 0.75  # 1440 x 480: the 480-pixel bird's-eye panel stays readable
THUMB_SCALE = 0.4


@dataclass(frozen=True)
class Picture:
    """What one frame's picture needs (kept while the frame waits for its logged future)."""

    model_image: np.ndarray
    waypoints: np.ndarray
    headings: np.ndarray
    bev_labels: np.ndarray | None = None  # published layout, with --perception
    boxes: tuple[Box, ...] = ()  # above the score threshold


def _even(size: int) -> int:
    return size - size % 2


class PlanPictures:
    def __init__(self, out_dir: Path, fps: float, untrained: bool) -> None:
        self.sheet_path = out_dir / "contact_sheet.png"
        self.video_path = out_dir / "frames.mp4"
        self.fps = fps
        self.untrained = untrained
        self._video: cv2.VideoWriter | None = None
        self._thumbs: list[tuple[int, np.ndarray]] = []
        self._stride = 1
        self._count = 0

    def add(self, frame: Picture, caption: str, logged: np.ndarray | None = None) -> None:
        """One frame; ``logged``: the logged future's ISO 8855 waypoints, when known."""
        picture = render_plan(
            frame.model_image,
            frame.waypoints,
            frame.headings,
            caption,
            self.untrained,
            logged,
            frame.bev_labels,
            frame.boxes,
        )
        bgr = np.ascontiguousarray(picture[..., ::-1])
        size = (_even(int(bgr.shape[1] * VIDEO_SCALE)), _even(int(bgr.shape[0] * VIDEO_SCALE)))
        if self._video is None:
            self._video = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
        self._video.write(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))
        if self._count % self._stride == 0:
            self._thumbs.append(
                (self._count, cv2.resize(bgr, None, fx=THUMB_SCALE, fy=THUMB_SCALE, interpolation=cv2.INTER_AREA))
            )
            if len(self._thumbs) > 2 * SHEET_MAX_FRAMES:
                self._thumbs = self._thumbs[::2]
                self._stride *= 2
        self._count += 1

    def close(self) -> list[Path]:
        """Write the sheet and finish the video; returns the files written."""
        written = []
        if self._video is not None:
            self._video.release()
            written.append(self.video_path)
        if self._thumbs:
            step = max(1, len(self._thumbs) // SHEET_MAX_FRAMES)
            thumbs = [t for _, t in self._thumbs[::step][:SHEET_MAX_FRAMES]]
            blank = np.zeros_like(thumbs[0])
            rows = [
                np.concatenate((thumbs[i : i + SHEET_COLUMNS] + [blank] * SHEET_COLUMNS)[:SHEET_COLUMNS], axis=1)
                for i in range(0, len(thumbs), SHEET_COLUMNS)
            ]
            if not cv2.imwrite(str(self.sheet_path), np.concatenate(rows, axis=0)):
                self.sheet_path.unlink(missing_ok=True)  # no partial picture left behind
                raise OSError(errno.EIO, "OpenCV could not write it (disk full?)", str(self.sheet_path))
            written.append(self.sheet_path)
        return written


COMMAND_COLOURS = {"left": "tab:blue", "straight": "tab:gray", "right": "tab:orange", "unknown": "tab:purple"}


def write_metrics_plot(
    path: Path, times_s: list[float], l2_2s: list[float], l2_4s: list[float], commands: list[str], untrained: bool
) -> Path:
    """``metrics.png``: L2 at 2 s and 4 s per frame over the drive, the command as a band."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    figure, axes = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        axes.plot(times_s, l2_2s, "o-", label="L2 at 2 s", color="tab:green", markersize=3)
        axes.plot(times_s, l2_4s, "s-", label="L2 at 4 s", color="tab:red", markersize=3)
        top = max([*l2_2s, *l2_4s, 1.0]) * 1.15
        edges = [*times_s, times_s[-1] + (times_s[-1] - times_s[-2] if len(times_s) > 1 else 0.1)]
        for start, end, command in zip(edges[:-1], edges[1:], commands, strict=True):
            axes.axvspan(start, end, ymin=0.94, ymax=1.0, color=COMMAND_COLOURS.get(command, "black"), lw=0)
        axes.set_ylim(0.0, top)
        axes.set_xlabel("time since the first planned frame (s)")
        axes.set_ylabel("L2 error vs logged drive (m)")
        title = "open-loop error against the logged drive (band: command)"
        axes.set_title(title + ("  [UNTRAINED SYNTHETIC WEIGHTS]" if untrained else ""))
        handles, _ = axes.get_legend_handles_labels()
        handles += [Patch(color=colour, label=name) for name, colour in COMMAND_COLOURS.items() if name in commands]
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(path)
    except OSError:
        path.unlink(missing_ok=True)  # no partial picture left behind
        raise
    finally:
        plt.close(figure)
    return path
