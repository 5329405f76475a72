"""LLM judge against a real HTTP stub of an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from nemo_rl.environments import RewardEnvironment, RewardFunctionError
from nemo_rl_envs.llm_judge import JudgeError, LLMJudge, LLMJudgeEnvironment, parse_score


@pytest.fixture
def judge_server():
    seen: list[dict] = []
    failures = {"left": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            if failures["left"]:
                failures["left"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            text = body["messages"][0]["content"]
            answer = text.split("<<<ANSWER\n")[1].split("\nANSWER>>>")[0]
            reply = (
                "gibberish" if answer == "???" else f"ok\nScore: {8 if 'Paris' in answer else 2}"
            )
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen, failures
    server.shutdown()
    server.server_close()
    thread.join()


def _convo(answer: str) -> list[dict]:
    return [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": answer},
    ]


def test_judge_scores_each_response_and_sends_key_and_reference(judge_server, monkeypatch):
    url, seen, _ = judge_server
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    env = LLMJudgeEnvironment(url, model="stub-judge", api_key_env="JUDGE_KEY", max_workers=2)
    step = env.step([_convo("Paris"), _convo("Lyon")], [{"answer": "Paris"}] * 2)
    assert step.rewards["llm_judge"].tolist() == pytest.approx([0.8, 0.2])
    assert {s["path"] for s in seen} == {"/v1/chat/completions"} and seen[0][
        "auth"
    ] == "Bearer sk-test"
    assert (
        seen[0]["model"] == "stub-judge" and "Reference answer" in seen[0]["messages"][0]["content"]
    )


def test_judge_is_a_weighted_component_and_retries_server_errors(judge_server):
    url, seen, failures = judge_server
    failures["left"] = 1
    judge = LLMJudge(url, model="stub-judge", retries=1)
    env = RewardEnvironment(
        {"judge": (judge, 0.5), "short": (lambda p, r: float(len(r) < 10), 1.0)}
    )
    assert env.step([_convo("Paris")], [{}]).total_reward().tolist() == pytest.approx([1.4])
    assert len(seen) == 2  # one 503, then the answer


def test_unscorable_replies_are_reward_errors(judge_server):
    url, _, _ = judge_server
    env = LLMJudgeEnvironment(url, model="stub-judge")
    with pytest.raises(RewardFunctionError, match="no 'Score: N' line"):
        env.step([_convo("???")], [{}])
    zero = LLMJudgeEnvironment(url, model="stub-judge", on_error="zero")
    assert zero.step([_convo("???")], [{}]).rewards["llm_judge"].tolist() == [0.0]
    with pytest.raises(JudgeError, match="outside"):
        parse_score("Score: 11", 10)
    with pytest.raises(JudgeError, match="unreachable"):
        LLMJudge("http://127.0.0.1:9/v1", model="m", retries=0, timeout_s=2)("q", "a")
