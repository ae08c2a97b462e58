"""A small threaded program to watch: `gilx watch examples/threaded_work.py [THREADS]`.

Each thread does three kinds of work in turn: a pure-Python loop (holds the
GIL), hashing a 4 MiB buffer with hashlib (releases the GIL while it hashes),
and a short sleep (releases it too).  `gilx watch` tells how much of the run
the GIL was held and how long a thread that wanted it had to wait.
"""

import hashlib
import sys
import threading
import time

BUFFER = bytes(4 * 1024 * 1024)


def work(rounds: int, results: list[str]) -> None:
    digest = hashlib.sha256()
    for _ in range(rounds):
        total = 0
        for i in range(200_000):  # pure Python: GIL held
            total += i * i
        digest.update(BUFFER)  # hashlib releases the GIL for large buffers
        digest.update(str(total).encode())
        time.sleep(0.005)  # blocking call: GIL released
    results.append(digest.hexdigest()[:12])


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    results: list[str] = []
    workers = [threading.Thread(target=work, args=(5, results)) for _ in range(threads)]
    start = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(f"{threads} threads done in {time.perf_counter() - start:.2f} s: {sorted(results)[0]}")


if __name__ == "__main__":
    main()
