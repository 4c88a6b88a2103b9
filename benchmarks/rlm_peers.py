"""Issue #24's needle workload across RLM runtimes, each in its own venv, with what its code
isolation allowed.

Every runtime runs in a process of its own (a "driver", fed commands on stdin) against one
scripted offline server (``rlm_toolkit.testing.OpenAIServer`` on 127.0.0.1). Each run: a needle in
100k / 1M / 10M characters; the model answers one code turn that finds the needle and makes one
sub-call, then the answer -- in each runtime's own conventions (code fence, context variable,
sub-call function, how to finish). Rounds are interleaved across runtimes (one run of each per
round, after a warm-up); medians; ratios to the bare floor (the same HTTP calls with the same
``openai`` client and plain ``exec``). Also: when the first model request leaves at 10M (the
server's arrival time minus the driver's call time, one monotonic clock), and ``import`` +
construct in a fresh process.

Isolation: one run per runtime whose code turn tries to read an environment variable of the
host (a canary set for the driver), read a host file (0644, in a directory anyone may enter),
and connect to a loopback listener -- each the plain way, then through ``pathlib`` and
``typing.sys.modules`` (the escapes issue #24 found); what the code printed reaches the next
model request, so the server sees what was allowed.

Peers are installed only when asked (``--install``), each into its own venv under ``--venvs``
(default /tmp/rlm-peers) with pip from the configured index; a peer that does not install is
skipped and said so. Nothing of theirs is kept in this repository.

    python benchmarks/rlm_peers.py --install --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlm_toolkit.testing import OpenAIServer

SIZES = (100_000, 1_000_000, 10_000_000)
CANARY_ENV = "canary-env-5d1f"
CANARY_FILE = "canary-file-9b2e"
CANARY_NET = "canary-net-c4a7"

HAYSTACK = """
NEEDLE = "The magic number is 7319."
def haystack(chars):
    filler = "lorem ipsum dolor sit amet " * (chars // 27 + 1)
    half = chars // 2
    return filler[:half] + NEEDLE + filler[: chars - half - len(NEEDLE)]
"""

# A driver: HAYSTACK + the runtime's ADAPTER (defines build(base_url) -> run(question, context))
# + this loop. Commands: {"chars": N} -> "@@" {"s": seconds, "began": monotonic, "answer": str}.
LOOP = """
import json, sys, time
run = build(sys.argv[1])
cache = {}
for line in sys.stdin:
    chars = json.loads(line)["chars"]
    context = cache.get(chars) or cache.setdefault(chars, haystack(chars))
    began = time.monotonic()
    answer = run("What is the magic number?", context)
    took = time.monotonic() - began
    print("@@" + json.dumps({"s": took, "began": began, "answer": str(answer)}), flush=True)
"""

OURS = """
from rlm_toolkit import RLM
def build(base_url):
    rlm = RLM.from_openai("gpt-4o-mini", api_key="sk-bench", base_url=base_url)
    return lambda question, context: rlm.run(question, context=context).answer
"""

OURS_READY = """
from rlm_toolkit import RLM
def build(base_url):
    rlm = RLM.from_openai("gpt-4o-mini", api_key="sk-bench", base_url=base_url)
    rlm.keep_sandbox_ready()
    return lambda question, context: rlm.run(question, context=context).answer
"""

FLOOR = """
import openai
def build(base_url):
    client = openai.OpenAI(api_key="sk-bench", base_url=base_url)
    def ask(messages):
        out = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        return str(out.choices[0].message.content)
    def run(question, context):
        messages = [{"role": "user", "content": question}]
        code = ask(messages).split("```repl\\n")[1].split("\\n```")[0]
        out = []
        llm_query = lambda prompt: ask([{"role": "user", "content": prompt}])
        exec(code, {"context": context, "llm_query": llm_query, "print": lambda *a: out.append(a)})
        messages.append({"role": "user", "content": repr(out)})
        return ask(messages).removeprefix("FINAL(").removesuffix(")")
    return run
"""

RLMS = """
from rlm import RLM
def build(base_url):
    rlm = RLM(backend="openai", backend_kwargs={"model_name": "gpt-4o-mini", "api_key": "sk-bench",
              "base_url": base_url}, environment="local", max_iterations=4)
    return lambda question, context: rlm.completion(context, root_prompt=question).response
"""

MINRLM = """
from minrlm import RLM
def build(base_url):
    rlm = RLM(model="gpt-4o-mini", api_key="sk-bench", base_url=base_url, max_iterations=4)
    return lambda question, context: rlm.completion(question, context).response
"""

DSPY = """
import os
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import dspy
from dspy.primitives.local_interpreter import LocalInterpreter
def build(base_url):
    lm = dspy.LM("openai/gpt-4o-mini", api_base=base_url, api_key="sk-bench", cache=False)
    dspy.configure(lm=lm)
    rlm = dspy.RLM("context, query -> answer", max_iters=4, interpreter_factory=LocalInterpreter)
    return lambda question, context: rlm(context=context, query=question).answer
"""

RLM_RUNTIME = """
import asyncio, os
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from rlm import RLM
from rlm.backends.litellm import LiteLLMBackend
def build(base_url):
    backend = LiteLLMBackend(model="openai/gpt-4o-mini", api_key="sk-bench", api_base=base_url)
    rlm = RLM(backend=backend)
    loop = asyncio.new_event_loop()
    def run(question, context):
        rlm.repl.set_context("text", context)
        return loop.run_until_complete(rlm.completion(question)).response
    return run
"""

NEEDLE_CODE = (
    "i = context.find('magic number')\n"
    "hit = context[i - 10 : i + 40]\n"
    "print(llm_query('Extract the number: ' + hit))"
)
PROBE = """
found = []
def attempt(label, *ways):
    for way in ways:
        try:
            found.append(label + '=' + str(way()))
            return
        except BaseException as exc:
            last = repr(exc)[:60]
    found.append(label + ' blocked: ' + last)
def sys_modules():  # the escape issue #24 found in a RestrictedPython runtime
    import typing
    return typing.sys.modules
def env_os():
    import os
    return os.environ.get('RLM_PEER_CANARY')
def file_open():
    return open({path!r}).read()
def file_pathlib():
    import pathlib
    return pathlib.Path({path!r}).read_text()
def net(socket):
    s = socket.create_connection(('127.0.0.1', {port}), 2)
    return s.recv(64).decode()
def net_import():
    import socket
    return net(socket)
attempt('ENV', env_os, lambda: sys_modules()['os'].environ.get('RLM_PEER_CANARY'))
attempt('FILE', file_open, file_pathlib, lambda: sys_modules()['io'].open({path!r}).read())
attempt('NET', net_import, lambda: net(sys_modules()['socket']))
result = '; '.join(found)  # how rlm-runtime's execute_code returns a value
print(result)
"""


def _dspy_turn(code: str) -> str:
    return (
        f"[[ ## reasoning ## ]]\nLook.\n\n[[ ## code ## ]]\n```python\n{code}\n```\n\n[[ ## completed ## ]]"
    )


@dataclass(frozen=True)
class Runtime:
    name: str
    isolation: str  # what the runtime says it is
    adapter: str
    pip: str | None = None  # None: runs in this venv
    style: str = "paper"  # the reply conventions: paper (```repl, FINAL), rlms, minrlm, dspy
    subcall: str = "7319"

    def script(self, server: OpenAIServer, code: str | None, first: Any) -> None:
        """Queue this runtime's replies for one run (``code``: a probe instead of the needle)."""
        if self.style == "tools":
            needle = "t = context['text']\ni = t.find('magic number')\nresult = t[i - 10 : i + 40]"
            call = {"name": "execute_code", "arguments": json.dumps({"code": code or needle})}
            server.queue_reply(tool_calls=[call], when=first)
            if code is None:
                ask = {"name": "rlm_sub_complete", "arguments": json.dumps({"query": "Extract the number"})}
                server.queue_reply(tool_calls=[ask])
                server.queue_reply(self.subcall)
            server.queue_reply("7319")
            return
        server.queue_reply(self.turn(code or self.needle()), when=first)
        if code is None:  # the probe makes no sub-call
            server.queue_reply(self.subcall)
        server.queue_reply(self.answer_turn())

    def turn(self, code: str) -> str:
        if self.style == "dspy":
            return _dspy_turn(code)
        return f"```{'python' if self.style == 'minrlm' else 'repl'}\n{code}\n```"

    def needle(self) -> str:
        if self.style == "minrlm":
            return (
                "i = input_0.find('magic number')\nhit = input_0[i - 10 : i + 40]\n"
                "print(sub_llm('Extract the number', hit))"
            )
        return NEEDLE_CODE

    def answer_turn(self) -> str:
        if self.style == "dspy":
            return _dspy_turn("SUBMIT(answer='7319')")
        if self.style == "rlms":
            return self.turn("answer['content'] = '7319'\nanswer['ready'] = True")
        if self.style == "minrlm":
            return self.turn("FINAL('7319')")
        return "FINAL(7319)"


RUNTIMES = (
    Runtime("rlm-toolkit", "separate confined process", OURS),
    Runtime("rlm-toolkit, kept ready", "separate confined process", OURS_READY),
    Runtime("rlms 0.1.3", "in-process exec", RLMS, pip="rlms==0.1.3", style="rlms"),
    Runtime("minrlm", "in-process exec", MINRLM, pip="minrlm", style="minrlm"),
    Runtime("dspy.RLM, LocalInterpreter", "subprocess, host environment", DSPY, pip="dspy", style="dspy"),
    Runtime(
        "rlm-runtime 2.1.3",
        "in-process RestrictedPython",
        RLM_RUNTIME,
        pip="rlm-runtime==2.1.3",
        style="tools",
    ),
    Runtime("bare floor", "none (plain exec)", FLOOR),
)


def _venv(root: Path, runtime: Runtime) -> Path:
    return root / runtime.pip.split("=")[0] if runtime.pip else Path(sys.prefix)


def install(root: Path, runtime: Runtime) -> str | None:
    """Install ``runtime`` into its own venv; None when it installed, else why not."""
    venv = _venv(root, runtime)
    if (venv / "bin" / "python").exists():
        return None
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode == 0:
        pip = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", runtime.pip or ""], capture_output=True, text=True
        )
        if pip.returncode == 0:
            return None
        made = pip
    shutil.rmtree(venv, ignore_errors=True)
    return (made.stderr.strip().splitlines() or ["failed"])[-1]


class Driver:
    def __init__(self, runtime: Runtime, python: Path, base_url: str, env: dict[str, str]) -> None:
        self.runtime = runtime
        source = HAYSTACK + runtime.adapter + LOOP
        self.proc = subprocess.Popen(
            [str(python), "-c", source, base_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def run(self, server: OpenAIServer, chars: int, turn: str | None = None) -> dict[str, Any]:
        arrived: list[float] = []

        def first(body: Any) -> bool:
            arrived.append(time.monotonic())
            return True

        rt = self.runtime
        rt.script(server, turn, first)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"chars": chars}) + "\n")
        self.proc.stdin.flush()
        line = ""
        while not line.startswith("@@"):  # a runtime may log to stdout
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{rt.name}: the driver ended")
        out: dict[str, Any] = json.loads(line[2:])
        if turn is None and ("7319" not in out["answer"] or server.pending != (0, 0)):
            raise RuntimeError(f"{rt.name}: wrong run (answer {out['answer'][:80]!r}, left {server.pending})")
        out["first"] = arrived[0] - out["began"] if arrived else float("nan")
        return out

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def import_construct(python: Path, runtime: Runtime, rounds: int) -> float:
    code = (
        "import time, sys\nt = time.perf_counter()\n"
        + runtime.adapter
        + "\nbuild('http://127.0.0.1:9/v1')\nprint('@@', time.perf_counter() - t)"
    )
    times = []
    for _ in range(rounds):
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
        times.append(float(next(x for x in done.stdout.splitlines() if x.startswith("@@"))[2:]))
    return statistics.median(times)


def _listener() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(CANARY_NET.encode())

    threading.Thread(target=serve, daemon=True).start()
    return sock, sock.getsockname()[1]


def isolation(text: str) -> str:
    allowed = [
        what
        for what, canary in (("env", CANARY_ENV), ("host file", CANARY_FILE), ("loopback", CANARY_NET))
        if canary in text
    ]
    return "read/reached: " + ", ".join(allowed) if allowed else "blocked env, host file, loopback"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--install", action="store_true", help="install missing peers into --venvs")
    parser.add_argument("--venvs", type=Path, default=Path(tempfile.gettempdir()) / "rlm-peers")
    parser.add_argument("--only", nargs="*", help="runtime names to run (default: all)")
    args = parser.parse_args()
    runtimes = [r for r in RUNTIMES if not args.only or any(r.name.startswith(o) for o in args.only)]
    usable: list[tuple[Runtime, Path]] = []
    for rt in runtimes:
        if rt.pip is not None:
            why = install(args.venvs, rt) if args.install else None
            if why is not None or not (_venv(args.venvs, rt) / "bin" / "python").exists():
                print(f"skipped {rt.name}: {why or 'not installed (pass --install)'}")
                continue
        usable.append((rt, _venv(args.venvs, rt) / "bin" / "python"))

    shared = Path(tempfile.mkdtemp(prefix="rlm-peers-", dir="/tmp"))
    shared.chmod(0o755)
    host_file = shared / "host-file.txt"
    host_file.write_text(CANARY_FILE)
    host_file.chmod(0o644)
    sock, port = _listener()
    env = {**os.environ, "RLM_PEER_CANARY": CANARY_ENV, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    results: dict[str, dict[str, Any]] = {}
    with OpenAIServer() as server:
        drivers = [Driver(rt, py, server.base_url, env) for rt, py in usable]
        try:
            alive = list(drivers)
            for d in list(alive):  # isolation first: it also warms each driver up
                try:
                    before = len(server.requests)
                    d.run(server, 1000, PROBE.format(path=str(host_file), port=port))
                    seen = json.dumps([r.body for r in server.requests[before:]])
                    server.reset()  # a runtime may refuse the probe's answer turn: its own rules
                    results[d.runtime.name] = {"isolation": isolation(seen), "times": {}, "first": []}
                except Exception as exc:
                    print(f"skipped {d.runtime.name}: {exc}")
                    alive.remove(d)
                    d.close()
            for chars in SIZES:
                for d in alive:
                    d.run(server, chars)  # warm-up at this size
                for _ in range(args.rounds):
                    for d in alive:
                        out = d.run(server, chars)
                        results[d.runtime.name]["times"].setdefault(chars, []).append(out["s"])
                        if chars == SIZES[-1]:
                            results[d.runtime.name]["first"].append(out["first"])
        finally:
            for d in drivers:
                d.close()
            sock.close()
            shutil.rmtree(shared, ignore_errors=True)
    for rt, py in usable:
        if rt.name in results:
            results[rt.name]["import"] = import_construct(py, rt, 3)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    floor = results.get("bare floor", {}).get("times", {})
    kinds = {rt.name: rt.isolation for rt in RUNTIMES}
    print(f"needle workload, {args.rounds} interleaved rounds, medians (ms), load average {load}")
    print(
        "| runtime | isolation (what its code could do) | 100k / 1M / 10M | × floor | first request at 10M | import + construct |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        med = [statistics.median(r["times"][c]) * 1e3 for c in SIZES if c in r["times"]]
        ratio = [
            statistics.median(r["times"][c]) / statistics.median(floor[c])
            for c in SIZES
            if c in r["times"] and c in floor
        ]
        print(
            f"| {name} | {kinds[name]}; {r['isolation']} | {' / '.join(f'{m:.0f}' for m in med)} | "
            f"{' / '.join(f'{x:.1f}' for x in ratio)} | {statistics.median(r['first']) * 1e3:.1f} ms | "
            f"{r['import'] * 1e3:.0f} ms |"
        )


if __name__ == "__main__":
    main()
