"""Contact sheet (PNG) and video (MP4) of evaluated frames, with bounded memory: the
video is written frame by frame and the sheet keeps an evenly thinned set of thumbnails."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lead_ros.observation import Plan
from lead_ros.visualization import render_plan

SHEET_COLUMNS = 3
SHEET_MAX_FRAMES = 12
VIDEO_SCALE = 0.5
THUMB_SCALE = 0.4


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

    def add(self, plan: Plan, caption: str) -> None:
        picture = render_plan(plan.model_image, plan.waypoints, plan.headings, caption, self.untrained)
        bgr = np.ascontiguousarray(picture[..., ::-1])
        size = (_even(int(bgr.shape[1] * VIDEO_SCALE)), _even(int(bgr.shape[0] * VIDEO_SCALE)))
        if self._video is None:
            self._video = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
        self._video.write(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))
        if self._count % self._stride == 0:
            self._thumbs.append((self._count, cv2.resize(bgr, None, fx=THUMB_SCALE, fy=THUMB_SCALE,
                                                         interpolation=cv2.INTER_AREA)))  # fmt: skip
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
                raise OSError(f"could not write {self.sheet_path}")
            written.append(self.sheet_path)
        return written
