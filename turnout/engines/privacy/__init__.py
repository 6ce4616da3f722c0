"""Privacy: what may leave this machine, decided before every model call.

The rules:
1. Every model has a locality: `local` (the in-process engines, servers on loopback or on
   hosts config declares local with `local_hosts`) or `remote` (anything else). A role
   declares it with `locality = "remote"` when the URL cannot tell (`_locality`, `_policy`).
2. A call can reach its role's model and, through litellm's Router, the role's fallbacks
   and every endpoint of its fleet: each one is judged, not only the first (`deployments`).
3. Every part of a message turnout builds says what it holds (`turnout.engines.tag`):
   source, diffs, test and tool output, paths, signatures, the request, summaries written by
   local agents, turnout's own instructions. Untagged text counts as source.
4. The policy (`[policy] mode`, per role in `[policy.roles.*]`; `--policy`/`--offline`
   are a floor that config can only make stricter) says what a remote model may see:
   `open` anything; `no-code` no source, diffs, test or tool output, untagged text;
   `local-only` no remote call at all. Refactoring runs under `no-code` unless config chose.
5. A payload a remote model may not see is rewritten by `[policy] on_forbidden` (`outline`:
   code as its signatures; `summarize`: a summary by a local model; `redact`) or refused
   with EgressRefused, naming the part and what to do; it is never sent as it is. A remote
   fallback that may not see it is dropped for that call.
6. What left, by kind and in bytes, is the call's egress record (`EgressReport`): on the
   Completion, on its span (`turnout.egress.*`), in the usage meters and `turnout trace`.
7. `check_policy` refuses at start-up a config that contradicts its policy (a remote model
   under `local-only`), before any run.

8. A tool result that `turnout mcp` returns to a client declared remote obeys the same rules
   (`release()`, `_release.py`): under `no-code` its source parts are rewritten or withheld.

The door calls one entry point, `guard()`, which returns the call `Cleared` (the messages to
send, litellm parameters, the record) or raises EgressRefused; the door then reports back
through `Cleared` where the answer came from (`answered`) so what reached a remote model is
counted.
"""

from turnout.engines.privacy._egress import EgressReport
from turnout.engines.privacy._guard import FORBIDDEN, Cleared, guard
from turnout.engines.privacy._release import release
from turnout.engines.privacy._locality import Locality, is_loopback_host, locality_of, split_model
from turnout.engines.privacy._policy import (
    Deployment,
    check_policy,
    deployments,
    mcp_server_locality,
    model_locality,
    own_locality,
    served_locality,
    span_capture,
)

__all__ = [
    "FORBIDDEN",
    "Cleared",
    "Deployment",
    "EgressReport",
    "Locality",
    "check_policy",
    "deployments",
    "guard",
    "is_loopback_host",
    "locality_of",
    "mcp_server_locality",
    "model_locality",
    "own_locality",
    "release",
    "served_locality",
    "span_capture",
    "split_model",
]
