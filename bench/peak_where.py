"""Where one cached analysis holds the most memory: its resident set sampled every 20 ms (issue 30, memory).

    python bench/peak_where.py DB

Runs ``analyze(--all)`` (MiniLM) in this process while a thread reads the RSS (``/proc/self/statm``) and the
main thread's innermost ``stability`` function; prints the highest RSS and the functions with the 25 highest
(``?``: the main thread was in no ``stability`` frame, e.g. still inside networkx or numpy called from the
function listed under it), then ``ru_maxrss``. Linux only. Runs on an older checkout too (PYTHONPATH).
"""

from __future__ import annotations

import resource
import sys
import threading
import time
import traceback

from stability.analysis.measure import analyze


def rss_mib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() >> 20


def main(db: str) -> None:
    thread = threading.main_thread().ident
    highest: dict[str, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = rss_mib()
            frame = sys._current_frames().get(thread) if thread is not None else None
            stack = traceback.extract_stack(frame) if frame is not None else []
            inner = [s for s in reversed(stack) if "stability" in s.filename and "bench" not in s.filename]
            where = f"{inner[0].name} ({inner[0].filename.rsplit('/', 1)[-1]}:{inner[0].lineno})" if inner else "?"
            if inner and stack[-1] is not inner[0]:
                where = "? under " + where
            highest[where] = max(highest.get(where, 0), now)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started, cpu = time.perf_counter(), time.process_time()
    analyze([], db, all_runs=True, embedder="all-MiniLM-L6-v2")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    done.set()
    sampler.join()
    print(f"analyze: {cpu:.1f} s CPU, {wall:.1f} s wall")
    for where, mib in sorted(highest.items(), key=lambda item: -item[1])[:25]:
        print(f"{mib:6d} MiB  {where}")
    print(f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB")


if __name__ == "__main__":
    main(sys.argv[1])
