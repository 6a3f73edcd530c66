#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# Drives samples/echo_server as an outside client would: starts `echo_server 0`, reads its
# "ready <port>" line, opens many connections at once, sends messages of several sizes (up to
# 64 KiB, more than one 4 KiB read) on all of them, checks every echo byte for byte, then sends
# SIGTERM and checks that the server closes every connection and exits 0.
import selectors
import signal
import socket
import subprocess
import sys
import time

CONNECTIONS = 200
SIZES = [1, 64, 4096, 5000, 65536]


def main(server_exe):
    proc = subprocess.Popen([server_exe, "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            print(f"expected 'ready <port>', got {line}")
            return 1
        port = int(line[1])
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        for rnd, size in enumerate(SIZES):
            base = bytes(range(251)) * (size // 251 + 2)
            payloads = [base[(i + rnd) % 251:(i + rnd) % 251 + size] for i in range(CONNECTIONS)]
            got = [bytearray() for _ in socks]
            sel = selectors.DefaultSelector()
            for i, s in enumerate(socks):
                s.sendall(payloads[i]) if size <= 4096 else None
                sel.register(s, selectors.EVENT_READ, i)
            # Big payloads are sent in pieces while reading, so neither side's buffers fill up.
            pending = {i: memoryview(payloads[i]) for i in range(CONNECTIONS)} if size > 4096 else {}
            deadline = time.monotonic() + 60
            while any(len(got[i]) < size for i in range(CONNECTIONS)):
                if time.monotonic() > deadline:
                    print(f"round {rnd}: timed out waiting for echoes")
                    return 1
                for i, rest in list(pending.items()):
                    n = socks[i].send(rest[:16384])
                    pending[i] = rest[n:]
                    if not pending[i]:
                        del pending[i]
                for key, _ in sel.select(timeout=0.1):
                    i = key.data
                    data = key.fileobj.recv(1 << 16)
                    if not data:
                        print(f"connection {i} closed early")
                        return 1
                    got[i] += data
            sel.close()
            bad = [i for i in range(CONNECTIONS) if bytes(got[i]) != payloads[i]]
            if bad:
                print(f"round {rnd} (size {size}): {len(bad)} connections echoed wrong data")
                return 1
            print(f"round {rnd}: {CONNECTIONS} connections echoed {size} bytes each")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        if code != 0:
            print(f"echo_server exited {code} after SIGTERM")
            return 1
        for i, s in enumerate(socks):
            s.settimeout(10)
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            if data:
                print(f"connection {i} still open after shutdown")
                return 1
        print("SIGTERM: every connection closed, exit status 0")
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
