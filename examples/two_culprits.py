"""A program with two culprits: `gilx watch --top examples/two_culprits.py [SECONDS]`.

A small service: four handler threads answer requests (a 1 ms wait for "the
network", then a little Python to build the reply), while two background
threads keep the GIL from them:

* `rebuild_index` rebuilds an index in pure Python (holds the GIL whenever it
  runs; the interpreter makes it hand the GIL over every 5 ms);
* `checksum_blocks` calls a C function that does not release the GIL
  (`gilx.count_gil` stands in for such an extension call).

`gilx watch --top` names both, with their stacks, and says which handler
waited on which of them; the handlers' own code barely shows.
"""

import sys
import threading
import time

import gilx

stop = threading.Event()
served = [0] * 4


def rebuild_index() -> None:
    while not stop.is_set():
        index = {}
        for i in range(20_000):
            index[str(i)] = i * i


def checksum_blocks() -> None:
    while not stop.is_set():
        gilx.count_gil(3_000_000)  # ~1 ms in C with the GIL held


def handle_requests(slot: int) -> None:
    while not stop.is_set():
        time.sleep(0.001)  # waiting for the network: GIL released
        served[slot] += len(str({"slot": slot, "n": served[slot]}))


def main(seconds: float) -> None:
    threads = [threading.Thread(target=rebuild_index, name="indexer"),
               threading.Thread(target=checksum_blocks, name="checksummer")]
    threads += [threading.Thread(target=handle_requests, args=(i,), name=f"handler-{i}")
                for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    print(f"{sum(served):,} bytes of replies in {seconds:g} s")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
