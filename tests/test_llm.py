"""The LLM client over real HTTP: litellm talks to a scripted OpenAI-compatible server on loopback.

Nothing is mocked between the client and the socket, so these tests cover what a real
provider does to a run: rate limits, server errors, slow and truncated replies, missing
usage fields, and a resumed run that must not pay twice.
"""

from __future__ import annotations

import time

import pytest
from fake_llm import FakeLLM, Reply

from synth_reward.agent.llm import (
    LLMClient,
    LLMError,
    LLMSettings,
    SpendCapReached,
    _litellm,
    llm_available,
    prompt_key,
    require_llm,
)
from synth_reward.agent.store import RunStore
from synth_reward.errors import UsageError

MESSAGES = [{"role": "system", "content": "You write rewards."}, {"role": "user", "content": "make the humanoid kneel"}]
MESSY = [
    "Here is the reward:\n```python\ndef compute_reward(state, action):\n    return r, {}\n```\nHope it helps!",
    "```\r\ndef compute_reward(state, action):\r\n\treturn r, {}\r\n```",
    "Sure! I cannot write code today.",
    "```python\ndef compute_reward(state, action):\n    import os\n    os.system('rm -rf /')\n```",
    "```python\ndef compute_reward(state, action):\n    x = (",
]


@pytest.fixture()
def fake():
    with FakeLLM() as server:
        yield server


def settings(server: FakeLLM, **kw) -> LLMSettings:
    values = dict(
        model="openai/fake",
        api_base=server.base_url,
        api_key="test",
        timeout_s=2.0,
        max_retries=2,
        backoff_s=0.01,
        backoff_max_s=0.2,
        max_tokens=1000,
    )
    values.update(kw)
    return LLMSettings(**values)


def test_k_samples_are_concurrent_and_in_order(fake):
    client = LLMClient(settings(fake, max_concurrency=4, timeout_s=30.0))  # a loaded machine may start threads late
    client.complete(MESSAGES, n=1)  # warm: litellm's first call imports and sets up
    fake.default = Reply(content="held until all four are in", wait_for=4)  # a serial client waits 10 s each
    out = client.complete(MESSAGES, n=4)
    assert fake.max_in_flight == 4, f"at most {fake.max_in_flight} requests were in flight at once: not concurrent"
    assert [c.sample for c in out] == [0, 1, 2, 3] and all(c.ok and c.text == "held until all four are in" for c in out)
    assert fake.count == 5
    body = fake.requests[-1].body
    assert body["messages"] == MESSAGES and body["max_tokens"] == 1000 and body["temperature"] == 1.0
    assert fake.requests[-1].headers.get("authorization") == "Bearer test"


def test_messy_replies_come_back_verbatim(fake):
    fake.push(*(Reply(content=text) for text in MESSY))
    out = LLMClient(settings(fake, max_concurrency=1)).complete(MESSAGES, n=len(MESSY))
    assert [c.text for c in out] == MESSY  # extraction and vetting are the sandbox's job


def test_rate_limit_and_server_error_are_retried_and_counted(fake, tmp_path):
    fake.push(Reply(status=429, headers={"retry-after": "0"}), Reply(status=500), Reply(content="third time lucky"))
    store = RunStore.create(tmp_path, "x")
    client = LLMClient(settings(fake), store)
    [c] = client.complete(MESSAGES)
    assert c.ok and c.text == "third time lucky" and c.attempts == 3 and c.retries == 2
    assert fake.count == 3  # neither litellm nor the OpenAI SDK retried on its own
    assert client.usage.retries == 2 and client.usage.failures == 2 and client.usage.replies == 1
    calls = store.llm_calls()
    assert [r["status"] for r in calls] == [429, 500, None] and [r["ok"] for r in calls] == [False, False, True]
    assert "rate limited" in calls[0]["error"]


def test_a_sample_that_keeps_failing_does_not_sink_the_others(fake):
    fake.push(Reply(status=503), Reply(status=503), Reply(content="second sample"))
    out = LLMClient(settings(fake, max_retries=1, max_concurrency=1)).complete(MESSAGES, n=2)
    assert not out[0].ok and "503" in out[0].error and "gave up after 2 attempts" in out[0].error
    assert out[1].ok and out[1].text == "second sample"


def test_slow_reply_times_out_with_a_clear_error(fake):
    fake.default = Reply(content="too late", delay_s=3.0)
    client = LLMClient(settings(fake, timeout_s=0.5, max_retries=1))
    _litellm()  # the first call imports litellm (seconds): not what is timed (run alone, the test failed on it)
    start = time.monotonic()
    with pytest.raises(LLMError, match="timed out after 0.5 s") as err:
        client.complete(MESSAGES, n=2)
    assert time.monotonic() - start < 2.9
    assert len(err.value.completions) == 2 and fake.count == 4  # 2 samples x (1 try + 1 retry)
    assert client.usage.retries == 2


def test_slow_then_fast_recovers(fake):
    fake.push(Reply(delay_s=2.0), Reply(content="fast"))
    [c] = LLMClient(settings(fake, timeout_s=0.5)).complete(MESSAGES)
    assert c.text == "fast" and c.retries == 1


def test_bad_key_is_not_retried(fake):
    fake.default = Reply(status=401)
    with pytest.raises(LLMError, match="AuthenticationError"):
        LLMClient(settings(fake)).complete(MESSAGES, n=3)
    assert 1 <= fake.count <= 3  # one attempt per sample at most, no retries


def test_garbage_body_is_an_error_not_a_hang(fake):
    fake.default = Reply(raw_body=b"<html>502 bad gateway</html>")
    with pytest.raises(LLMError):
        LLMClient(settings(fake, max_retries=1)).complete(MESSAGES)


def test_truncated_reply_and_missing_usage(fake):
    fake.push(
        Reply(content="```python\ndef compute_reward(state, action):\n    r = ", finish_reason="length", usage=None)
    )
    [c] = LLMClient(settings(fake)).complete(MESSAGES)
    assert c.truncated and c.tokens_estimated and c.completion_tokens > 0


def test_tokens_and_cost_are_counted(fake, tmp_path):
    fake.default = Reply(usage={"prompt_tokens": 1000, "completion_tokens": 200})
    store = RunStore.create(tmp_path, "x")
    client = LLMClient(settings(fake, input_cost_per_token=1e-6, output_cost_per_token=5e-6), store)
    out = client.complete(MESSAGES, n=3)
    assert all(c.prompt_tokens == 1000 and c.completion_tokens == 200 for c in out)
    assert all(c.cost_usd == pytest.approx(0.002) and c.cost_known for c in out)
    assert client.usage.prompt_tokens == 3000 and client.usage.completion_tokens == 600
    assert client.spent_usd == pytest.approx(0.006)
    assert sum(r["cost_usd"] for r in store.llm_calls()) == pytest.approx(0.006)
    assert LLMClient(client.settings, store).spent_usd == pytest.approx(0.006)  # a resumed run remembers


def test_unknown_price_counts_zero_with_a_note(fake):
    client = LLMClient(settings(fake))
    [c] = client.complete(MESSAGES)
    assert c.cost_usd == 0 and not c.cost_known and "unknown" in client.notes[0]


def test_known_model_uses_litellm_prices(fake):
    fake.default = Reply(usage={"prompt_tokens": 1_000_000, "completion_tokens": 0})
    [c] = LLMClient(settings(fake, model="openai/gpt-4o")).complete(MESSAGES)
    assert c.cost_known and c.cost_usd > 0.5  # gpt-4o input is priced in dollars per million tokens


def test_spend_cap_stops_before_sending(fake, tmp_path):
    # each reply costs 1000 * 1e-5 = $0.01; the worst-case estimate is about the same
    fake.default = Reply(usage={"prompt_tokens": 10, "completion_tokens": 1000})
    store = RunStore.create(tmp_path, "x")
    s = settings(fake, output_cost_per_token=1e-5, spend_cap_usd=0.015, max_concurrency=1)
    client = LLMClient(s, store)
    with pytest.raises(SpendCapReached, match=r"spend cap of \$0.01? ?.*reached") as err:
        client.complete(MESSAGES, n=3)
    assert fake.count == 1 and [c.sample for c in err.value.completions] == [0]
    assert client.spent_usd <= 0.015 and err.value.exit_code != 2
    # resumed with the same cap: the stored sample is reused, nothing more is sent
    with pytest.raises(SpendCapReached) as again:
        LLMClient(s, store).complete(MESSAGES, n=3)
    assert fake.count == 1 and again.value.completions[0].cached
    # resumed with a higher cap: only the missing samples are requested
    out = LLMClient(s.model_copy(update={"spend_cap_usd": 1.0}), store).complete(MESSAGES, n=3)
    assert fake.count == 3 and [c.cached for c in out] == [True, False, False]


def test_cache_means_a_resumed_run_never_pays_twice(fake, tmp_path):
    fake.default = Reply(content="a reward")
    store = RunStore.create(tmp_path, "x")
    first = LLMClient(settings(fake), store).complete(MESSAGES, n=3)
    assert fake.count == 3
    resumed = LLMClient(settings(fake), RunStore.open(store.path))
    again = resumed.complete(MESSAGES, n=3)
    assert fake.count == 3 and all(c.cached for c in again) and resumed.usage.cache_hits == 3
    assert [c.text for c in again] == [c.text for c in first]
    resumed.complete(MESSAGES, n=4)  # one more sample: one more request
    assert fake.count == 4
    resumed.complete([*MESSAGES, {"role": "user", "content": "another"}], n=1)  # another prompt
    assert fake.count == 5
    key = prompt_key(settings(fake), MESSAGES)
    assert store.read_json(f"llm/prompts/{key}.json")["messages"] == MESSAGES
    assert store.llm_reply(key, 3)["text"] == "a reward"


def test_settings_from_env_and_flags():
    env = {"SYNTH_REWARD_MODEL": "gpt-4o", "SYNTH_REWARD_API_BASE": " ", "SYNTH_REWARD_SPEND_CAP_USD": "2.5"}
    s = LLMSettings.from_env(env)
    assert s.model == "gpt-4o" and s.api_base is None and s.spend_cap_usd == 2.5
    assert LLMSettings.from_env(env, model="openai/x", spend_cap_usd=None).model == "openai/x"
    assert "api_key" not in LLMSettings(model="m", api_key="secret").public()
    for bad in ({"spend_cap_usd": 0}, {"spend_cap_usd": -1}, {"timeout_s": 0}):
        with pytest.raises(UsageError, match="bad LLM setting") as err:
            LLMSettings.from_env({}, **bad)
        assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_llm_available(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert llm_available(LLMSettings()) == (False, "no LLM configured (pass --model or set SYNTH_REWARD_MODEL)")
    ok, why = llm_available(LLMSettings(model="gpt-4o"))
    assert not ok and "OPENAI_API_KEY" in why
    ok, why = llm_available(LLMSettings(model="anthropic/claude-3-5-sonnet-latest"))
    assert not ok and "ANTHROPIC_API_KEY" in why
    with pytest.raises(UsageError, match="no API key"):
        require_llm(LLMSettings(model="gpt-4o"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert llm_available(LLMSettings(model="gpt-4o"))[0]
    assert llm_available(LLMSettings(model="openai/local", api_base="http://127.0.0.1:8000/v1"))[0]
    assert llm_available(LLMSettings(model="ollama/llama3"))[0]
    assert not llm_available(LLMSettings(model="m", api_key_env="MY_KEY"), environ={})[0]
    assert llm_available(LLMSettings(model="m", api_key_env="MY_KEY"), environ={"MY_KEY": "k"})[0]
    with pytest.raises(UsageError):
        LLMClient(LLMSettings())
