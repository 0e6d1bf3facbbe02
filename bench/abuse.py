#!/usr/bin/env python3
"""The worst case each defence of the HTTP service allows, with its defaults.

    abuse.py BASE_URL WORKER_PID

Reaches each cap from many loopback source addresses (127.0.0.2 ...; every
one of them is this machine) and measures, with the cap reached, the HTTP
worker's anonymous memory (RssAnon) and how long GET /healthz takes from
another address.  Cases:
  idle      nothing open (the reference)
  streams   event streams of a 10 MB log of escapes whose clients read
            nothing, 32 per address, until the service refuses more
  answers   GET /jobs/{id}/log of a 16 MB log by clients that read nothing,
            until buildlog.http_max_answer_bytes answers 503
  uploads   16 stream uploads of 40 MB each, piped as fast as the clients can
Prints one line per case: open connections, refusals, RssAnon, /healthz p50
and p99 over 200 sequential requests.
"""
import socket
import statistics
import sys
import threading
import time
import urllib.parse

BASE = sys.argv[1]
PID = int(sys.argv[2])
URL = urllib.parse.urlparse(BASE)
HOST, PORT = URL.hostname, URL.port


def rss_anon_kb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def healthz_ms(n=200):
    """Sequential GET /healthz from 127.0.0.1, each on its own connection."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = socket.create_connection((HOST, PORT), timeout=30)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
        s.close()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def open_idle(source, request):
    """A client that sends request and reads nothing (a tiny receive buffer)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect((HOST, PORT))
    s.sendall(request)
    return s


def status_of(sock, wait=2.0):
    """The status code the server sent first, or 0 (nothing yet)."""
    sock.settimeout(wait)
    try:
        head = sock.recv(64)
    except socket.timeout:
        return 0
    except OSError:
        return -1
    if not head:
        return -1
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def report(case, opened, refused, settle=3.0):
    time.sleep(settle)              # let the worker fill what it will
    p50, p99 = healthz_ms()
    print(f"{case:8s} open {opened:5d}  refused {refused:5d}  RssAnon {rss_anon_kb() / 1024:8.1f} MB"
          f"  /healthz p50 {p50:7.2f} ms  p99 {p99:7.2f} ms", flush=True)


def sources():
    for a in range(2, 250):
        yield f"127.0.0.{a}"


def case_streams(job):
    socks, refused = [], 0
    req = f"GET /jobs/{job}/events HTTP/1.1\r\nHost: b\r\n\r\n".encode()
    for src in sources():
        for _ in range(32):
            s = open_idle(src, req)
            st = status_of(s, 1.0)
            if st in (429, 503, -1):
                refused += 1
                s.close()
                if st == 503:
                    report("streams", len(socks), refused)
                    return socks
                break
            socks.append(s)
    report("streams", len(socks), refused)
    return socks


def case_answers(job):
    socks, refused = [], 0
    req = f"GET /jobs/{job}/log HTTP/1.1\r\nHost: b\r\n\r\n".encode()
    for src in sources():
        for _ in range(32):
            s = open_idle(src, req)
            st = status_of(s, 5.0)
            if st != 200:
                refused += 1
                s.close()
                if st == 503:
                    report("answers", len(socks), refused)
                    return socks
                break
            socks.append(s)
    report("answers", len(socks), refused)
    return socks


def case_uploads(token_of, first_job, n=16, size=40 * 1024 * 1024):
    line = b"x" * 79 + b"\n"
    chunk = line * 8192                 # 640 kB
    done = []

    def upload(job, src):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.connect((HOST, PORT))
        s.sendall((f"POST /jobs/{job}/stream HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token_of(job)}\r\n"
                   "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        sent = 0
        while sent < size:
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        s.sendall(b"0\r\n\r\n")
        done.append(s.recv(200).split(b" ", 2)[1])
        s.close()

    peak = [rss_anon_kb()]
    threads = [threading.Thread(target=upload, args=(first_job + i, f"127.0.1.{i + 2}")) for i in range(n)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak[0] = max(peak[0], rss_anon_kb())
        time.sleep(0.05)
    p50, p99 = healthz_ms()
    print(f"uploads  open {n:5d}  answered {b','.join(sorted(set(done))).decode():>5s}  peak RssAnon {peak[0] / 1024:8.1f} MB"
          f"  /healthz after p50 {p50:7.2f} ms  p99 {p99:7.2f} ms ({n} x {size >> 20} MB)", flush=True)


if __name__ == "__main__":
    report("idle", 0, 0, settle=0)
    streams = case_streams(int(sys.argv[3]))
    for s in streams:
        s.close()
    time.sleep(3)
    answers = case_answers(int(sys.argv[4]))
    for s in answers:
        s.close()
    time.sleep(3)
    tokens = dict(line.split() for line in open(sys.argv[5]))
    case_uploads(lambda job: tokens[str(job)], int(sys.argv[6]))
