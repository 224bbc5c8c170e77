"""A/B, same run, interleaved: reading the message chains of N stored calls, by one recursive CTE (the first
version) against one primary-key lookup per level (``stability.store.chains``, the committed one).

    python bench/chains_read_ab.py STORE.duckdb   (e.g. the --db of bench/storage.py --revisions 100000)
"""

import json
import random
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

from overhead import loadavg, versions  # noqa: E402

from stability.store.chains import _nodes  # noqa: E402


def cte(con, tips):
    return con.execute("""WITH RECURSIVE walk(hash, parent, message) AS (
        SELECT hash, parent, message::VARCHAR FROM messages WHERE hash IN (SELECT unnest(?::VARCHAR[]))
        UNION SELECT m.hash, m.parent, m.message::VARCHAR FROM messages m JOIN walk w ON m.hash = w.parent)
        SELECT hash, parent, message FROM walk""", [sorted(tips)]).fetchall()

con = duckdb.connect(sys.argv[1], read_only=True)
tips = [r[0] for r in con.execute("SELECT chain FROM calls USING SAMPLE 2000").fetchall()]
rng = random.Random(0)
out = {"what": __doc__, "loadavg_before": loadavg()}
for n in (1, 16, 64):
    a, b = [], []
    for _ in range(21):
        asked = set(rng.sample(tips, n))
        started = time.perf_counter()
        cte(con, asked)
        a.append(time.perf_counter() - started)
        started = time.perf_counter()
        got = _nodes(con, asked, "main")
        b.append(time.perf_counter() - started)
        assert len(got) == len(cte(con, asked))
    out[f"chains_{n}_recursive_cte_ms"] = round(1000 * statistics.median(a), 1)
    out[f"chains_{n}_per_level_lookups_ms"] = round(1000 * statistics.median(b), 1)
out.update(loadavg_after=loadavg(), versions=versions())
print(json.dumps(out, indent=2))
