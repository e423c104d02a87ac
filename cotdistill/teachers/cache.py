"""A content-addressed cache of teacher completions, shared by every generation and set.

    cache = CompletionCache()                         # $COTDISTILL_HOME/teacher_cache
    key = cache.key(teacher.identity(), decoding, prompt_text)
    text = cache.get(key)                             # None on a miss
    cache.put(key, text)

The key is SHA-256 over the teacher's identity, the decoding settings and the exact prompt text
(template + example + gold hint), so the same request is never paid for twice, whichever set it is
for. Only successful completions are stored, one small JSON file each, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Mapping

from cotdistill.teachers.base import Decoding


class CompletionCache:
    """Raw completion texts by request hash under `root` ($COTDISTILL_HOME/teacher_cache)."""

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from cotdistill.paths import home

            root = home() / "teacher_cache"
        self.root = Path(root)

    @staticmethod
    def key(identity: Mapping[str, Any], decoding: Decoding, prompt_text: str) -> str:
        blob = json.dumps({"teacher": identity, "decoding": decoding.to_dict(),
                           "prompt": prompt_text}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            value = json.loads(self._path(key).read_text(encoding="utf-8"))["text"]
        except (OSError, ValueError, KeyError, TypeError):
            return None                               # a miss, or a damaged entry: ask again
        return value if isinstance(value, str) else None

    def put(self, key: str, text: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps({"text": text}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
