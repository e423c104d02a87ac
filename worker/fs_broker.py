"""The embedded broker: kombu's `filesystem://` transport, with messages that appear whole.

kombu's own `_put` opens `<time>_<uuid>.<queue>.msg` in the queue folder and then writes it, while
`_get` takes any `*.msg` it lists, without the writer's lock. A consumer that lists the folder between
the two reads an empty file, and `json.loads("")` ends the worker ("Unrecoverable error:
JSONDecodeError"). Seen in CI when the app sent a preview while a worker polled.

Here a message is written under a name no consumer takes (`.<name>.part`, same folder, same file
system) and renamed to its final name only when complete: a rename is atomic, so a consumer sees
nothing or the whole message. A message that still can't be read (written by another program, or a
disk fault) is set aside as `<name>.bad` with a warning instead of stopping the worker.

`worker.celery_app` points the `filesystem` alias at this class, so every process of the project
(app, CLI, workers) writes and reads the same way; the URL stays `filesystem://`.
"""

from __future__ import annotations

import logging
import os
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"


class Channel(filesystem.Channel):

    def _put(self, queue, payload, **kwargs):
        name = "{}_{}.{}.msg".format(int(round(filesystem.monotonic() * 1000)), uuid.uuid4(), queue)
        final = os.path.join(self.data_folder_out, name)
        part = os.path.join(self.data_folder_out, "." + name + PART_SUFFIX)
        try:
            with open(part, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(part, final)
        except OSError as exc:
            try:
                os.unlink(part)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        if not self.store_processed:            # not how the project configures it; kombu's own way
            return super()._get(queue)
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:    # also skips ".<name>.part" files being written
                continue
            taken = os.path.join(self.processed_folder, name)
            try:
                os.replace(os.path.join(self.data_folder_in, name), taken)   # of two consumers, one wins
            except OSError:
                continue
            try:
                with open(taken, "rb") as f:
                    payload = f.read()
            except OSError as exc:
                raise ChannelError(f"Cannot read file {taken!r} from queue.") from exc
            try:
                return loads(payload.decode())
            except (UnicodeDecodeError, ValueError) as exc:
                try:
                    os.replace(taken, taken + ".bad")
                except OSError:
                    pass
                log.warning("broker message %s is not valid JSON (%s); set aside as %s.bad", name, exc, taken)
        raise filesystem.Empty()


class Transport(filesystem.Transport):
    Channel = Channel
