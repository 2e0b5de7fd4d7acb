"""kombu's filesystem transport with atomic writes (the embedded broker).

Stock kombu 5.x creates the ``.msg`` file and then writes it under an advisory lock that the
consumer never takes: a consumer polling every 200 ms can move the file away while it is still
empty and the worker dies with ``JSONDecodeError`` (seen in our end-to-end tests). Here the
message is written to a name the consumer ignores and renamed into place, which is atomic.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # kombu's bases disagree
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # ".msg.tmp" does not match the consumer's "<queue>.msg" filter until the rename.
        tmp = final + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
