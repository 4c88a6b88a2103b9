"""Hot-path benchmark: rlm-toolkit vs the bare SDK, the bare OTel floor, and peer instrumentations.

    python benchmarks/run.py            # ours only (the project's venv)
    python benchmarks/run.py --peers    # also the peers, each in its own venv under .bench-venvs/

Every contender runs ``worker.py`` in its own process, which interleaves rounds of the
uninstrumented SDK, the instrumented SDK and the floor (one span + three metric records), so
each ratio is taken side by side within one process. Peers pin conflicting versions, hence one
venv per peer (created on first use; needs the package registry).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = ROOT / ".bench-venvs"

OURS = ("rlm-toolkit", None, "rlm_toolkit.instrumentation.openai:OpenAIInstrumentor")
REFERENCE = "reference:MinimalInstrumentor"
PEERS = [
    (
        "official genai-openai",
        "opentelemetry-instrumentation-genai-openai",
        "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor",
    ),
    (
        "OpenLLMetry",
        "opentelemetry-instrumentation-openai",
        "opentelemetry.instrumentation.openai:OpenAIInstrumentor",
    ),
    (
        "OpenInference",
        "openinference-instrumentation-openai",
        "openinference.instrumentation.openai:OpenAIInstrumentor",
    ),
]


def _peer_python(package: str) -> Path:
    env = VENVS / package
    python = env / "bin" / "python"
    if not python.exists():
        print(f"creating {env} ...", file=sys.stderr)
        venv.create(env, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", package, "openai", "opentelemetry-sdk"],
            check=True,
        )
    return python


def _run(
    python: Path | str, instrumentor: str, rounds: int, scale: float, workloads: str = ""
) -> dict[str, Any]:
    out = subprocess.run(
        [
            str(python),
            str(HERE / "worker.py"),
            "--instrumentor",
            instrumentor,
            "--rounds",
            str(rounds),
            "--scale",
            str(scale),
            "--workloads",
            workloads,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _table(results: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| contender | floor µs isolated / in situ | chat: SDK µs | chat added µs, alternating | ÷ floor in situ | ÷ floor isolated | chat added µs, blocks | per chunk µs | stream_10 added µs | stream_100 added µs | async chat added µs | embeddings added µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results:
        w = r["workloads"]
        chat = w["chat"]
        alt = r.get("chat_added_alternating_cpu_us")
        # Ratios use the alternating figure when there is one (the like-for-like comparison).
        added = chat["added_cpu_us"] if alt is None else alt
        chunk = r["added_cpu_per_chunk_us"]
        cells = [
            name,
            f"{r['floor_cpu_us']:.0f} / {r['floor_in_situ_cpu_us']:.0f}",
            f"{chat['sdk_cpu_us']:.0f}",
            "-" if alt is None else f"{alt:.0f}",
            f"{added / r['floor_in_situ_cpu_us']:.2f}x",
            f"{added / r['floor_cpu_us']:.2f}x",
            f"{chat['added_cpu_us']:.0f}",
            "-" if chunk is None else f"{chunk:.2f}",
            *(
                f"{w[k]['added_cpu_us']:.0f}" if k in w else "-"
                for k in ("stream_10", "stream_100", "async_chat", "embeddings")
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", action="store_true", help="also measure the peer instrumentations")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--scale", type=float, default=1.0, help="scale call counts (0.2 for a quick look)")
    ap.add_argument("--json", type=Path, help="also write raw results here")
    ap.add_argument(
        "--reference",
        action="store_true",
        help="also measure benchmarks/reference.py, the leanest wrapper emitting the floor's telemetry (chat only)",
    )
    ap.add_argument(
        "--workloads",
        default="",
        help="comma list of a subset (chat always runs): stream_10, stream_100, stream_1000, async_chat, embeddings",
    )
    args = ap.parse_args()

    results = [(OURS[0], _run(sys.executable, OURS[2], args.rounds, args.scale, args.workloads))]
    if args.reference:
        results.append(
            ("reference minimal wrapper", _run(sys.executable, REFERENCE, args.rounds, args.scale, "chat"))
        )
    if args.peers:
        for name, package, instrumentor in PEERS:
            try:
                results.append(
                    (name, _run(_peer_python(package), instrumentor, args.rounds, args.scale, args.workloads))
                )
            except subprocess.CalledProcessError as exc:
                print(f"{name}: skipped ({(exc.stderr or '').strip().splitlines()[-1:]})", file=sys.stderr)
    print("CPU per call, median of interleaved rounds; 'added' = instrumented minus SDK in the same process.")
    print(_table(results))
    if args.json:
        args.json.write_text(json.dumps(dict(results), indent=2))


if __name__ == "__main__":
    main()
