"""Column stages between decode and encode: sample → change-only. Each is batch → batch, pure."""
