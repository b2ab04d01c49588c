"""LLM access through litellm: K concurrent samples, retries, a hard timeout, accounting, a spend cap.

Why this is more than one `litellm.completion` call:

- **K samples** are K separate requests (sample index 0..K-1) sent from a thread pool,
  not one request with ``n=K``: Anthropic and most local servers ignore ``n``, and
  separate requests let one sample fail without losing the others.
- **Retries are ours**, not litellm's or the OpenAI SDK's (both are set to 0), so every
  attempt is counted, logged and charged: 429, 408, 5xx, timeouts and dropped
  connections are retried with exponential backoff and full jitter (or the server's
  Retry-After, when it sends one); anything else (bad key, unknown model, bad request)
  is a configuration problem and raises `LLMError` at once.
- **A hard timeout per attempt** is given to the HTTP client, and a watchdog on the
  whole batch makes `complete` return or raise, never hang.
- **Cost** is litellm's price table where it knows the model, the settings' own prices
  where given, and 0 with a note for models it does not know (local servers).
- **The spend cap** is checked before each attempt is sent, against the money already
  spent in this run (earlier sessions included), the money reserved by attempts in
  flight and a worst-case estimate of this one (its prompt, plus ``max_tokens`` of
  reply). It raises `SpendCapReached` instead of sending; replies that did arrive are
  kept and stored.
- **The cache**: with a `RunStore`, every reply is stored under (prompt hash, sample
  index) as soon as it arrives, and a later request for the same sample of the same
  prompt (a resumed run) is answered from disk without a request.

litellm is imported on first use (it takes seconds), with its price table read from
the installed package rather than fetched from the internet.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from synth_reward.agent.store import RunStore
from synth_reward.errors import SynthRewardError, UsageError

Message = dict[str, str]
"""One chat message: {"role": "system" | "user" | "assistant", "content": text}."""

ENV_MODEL = "SYNTH_REWARD_MODEL"
ENV_API_BASE = "SYNTH_REWARD_API_BASE"
ENV_API_KEY_ENV = "SYNTH_REWARD_API_KEY_ENV"
ENV_SPEND_CAP = "SYNTH_REWARD_SPEND_CAP_USD"

LOCAL_PROVIDERS = frozenset({"ollama", "ollama_chat", "lm_studio", "llamafile", "hosted_vllm", "vllm", "xinference"})
"""litellm providers that run on the user's own machine and need no key."""
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


class LLMError(SynthRewardError):
    """The LLM could not be used: bad configuration, or every sample failed after its retries."""

    exit_code = 1

    def __init__(self, message: str, completions: Sequence[Completion] = ()) -> None:
        super().__init__(message)
        self.completions = list(completions)


class SpendCapReached(SynthRewardError):
    """Sending the next request could exceed the run's spend cap; nothing over the cap was sent.

    `completions` holds the samples of the interrupted batch that did arrive (already
    stored), so the caller can use them or stop; a resumed run with a higher cap reuses them.
    """

    exit_code = 3

    def __init__(self, message: str, completions: Sequence[Completion] = ()) -> None:
        super().__init__(message)
        self.completions = list(completions)


class LLMSettings(BaseModel):
    """Which model and how to call it. Build with `LLMSettings.from_env` so flags override env vars."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    """litellm model name: "gpt-4o", "anthropic/claude-3-5-sonnet-latest", "openai/<name>" for a local server."""
    api_base: str | None = None
    """OpenAI-compatible base URL of a local server (vLLM, Ollama, llama.cpp), e.g. http://127.0.0.1:8000/v1."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key, when not the provider's usual one."""
    api_key: SecretStr | None = Field(default=None, exclude=True)
    """The key itself (tests, programmatic use); never written to the run folder."""
    timeout_s: float = Field(120.0, gt=0)
    """Seconds one HTTP attempt may take before it is abandoned and retried."""
    max_retries: int = Field(4, ge=0)
    """Extra attempts per sample after the first, on rate limits, server errors and timeouts."""
    backoff_s: float = Field(2.0, ge=0)
    """First retry waits up to this long; each later one doubles it (full jitter)."""
    backoff_max_s: float = Field(60.0, ge=0)
    """Longest wait between two attempts, Retry-After included."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature; Eureka samples at 1.0 so the K candidates differ."""
    max_tokens: int | None = Field(4096, gt=0)
    """Longest reply, in tokens; also the worst case the spend cap assumes for a reply."""
    spend_cap_usd: float | None = Field(None, gt=0)
    """Stop before spending more than this, in US dollars, over the whole run; None: no cap."""
    max_concurrency: int = Field(8, ge=1)
    """Requests in flight at once."""
    input_cost_per_token: float | None = Field(None, ge=0)
    """USD per prompt token, overriding litellm's table (for self-hosted or unlisted models)."""
    output_cost_per_token: float | None = Field(None, ge=0)
    """USD per reply token, overriding litellm's table."""

    @field_validator("model", "api_base", "api_key_env")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> LLMSettings:
        """Settings from env vars (SYNTH_REWARD_MODEL, _API_BASE, _API_KEY_ENV, _SPEND_CAP_USD) and flags.

        Flags that are None fall back to the env var, then to the default. Bad values
        (a spend cap of zero, a negative timeout) raise UsageError in one line.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "model": env.get(ENV_MODEL),
            "api_base": env.get(ENV_API_BASE),
            "api_key_env": env.get(ENV_API_KEY_ENV),
            "spend_cap_usd": env.get(ENV_SPEND_CAP) or None,
        }
        values.update({k: v for k, v in flags.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            flag = {"spend_cap_usd": "spend cap (--spend-cap)", "timeout_s": "timeout (--timeout)"}.get(field, field)
            raise UsageError(f"bad LLM setting {flag}: {err['msg']} (got {err.get('input')!r})") from None

    def key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The API key to send: the explicit one, else the named env var, else None (litellm finds the provider's)."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return (os.environ if environ is None else environ).get(self.api_key_env)
        return None

    def public(self) -> dict[str, Any]:
        """The settings without secrets, for run.json."""
        return self.model_dump(mode="json")


class Completion(BaseModel):
    """One sample's reply (or its failure), with what it cost."""

    key: str
    """Hash of the prompt and sampling settings; with `sample` the cache key."""
    sample: int
    text: str = ""
    """The reply's text; empty when the sample failed."""
    finish_reason: str | None = None
    """"stop", "length" (cut off at max_tokens: the code may be incomplete), ... as the server said."""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    """True when the server sent no usage and the counts are estimated from the text length."""
    cost_usd: float = 0.0
    cost_known: bool = True
    """False when the model's price is unknown (counted as 0; the spend cap cannot protect it)."""
    attempts: int = 0
    """HTTP attempts made for this sample in this session (0 when answered from the cache)."""
    retries: int = 0
    latency_s: float = 0.0
    cached: bool = False
    """True when the reply came from the run folder instead of a request."""
    error: str | None = None
    """Why the sample failed after all its retries; None on success."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class CallRecord(BaseModel):
    """One HTTP attempt, as logged to llm/calls.jsonl (the run's spend is the sum of cost_usd)."""

    t: float
    key: str
    sample: int
    attempt: int
    model: str
    ok: bool
    status: int | None = None
    error: str | None = None
    retryable: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    latency_s: float = 0.0


class Usage(BaseModel):
    """Running totals of a client (and of the run, when it has a store: earlier sessions count too)."""

    requests: int = 0
    """HTTP attempts sent, failed ones included."""
    replies: int = 0
    failures: int = 0
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown_calls: int = 0
    """Replies whose price litellm does not know (counted as 0 USD)."""

    def add(self, rec: CallRecord) -> None:
        self.requests += 1
        self.retries += int(rec.attempt > 1)
        if rec.ok:
            self.replies += 1
        else:
            self.failures += 1
        self.prompt_tokens += rec.prompt_tokens
        self.completion_tokens += rec.completion_tokens
        self.cost_usd += rec.cost_usd
        self.cost_unknown_calls += int(rec.ok and not rec.cost_known)


# ---- litellm, lazily ---------------------------------------------------------------------
_litellm_lock = threading.Lock()


def _litellm() -> ModuleType:
    """Import litellm once: no telemetry, no debug banners.

    litellm fetches a price table over the network at import unless LITELLM_LOCAL_MODEL_COST_MAP
    is set; the command-line entry point (synth_reward/cli.py) sets it, a library caller may too.
    """
    with _litellm_lock:
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        litellm.drop_params = True  # a provider that lacks temperature/max_tokens gets the request without them
    return litellm


def llm_available(settings: LLMSettings, environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Can this model be called? (ok, reason in one line). Makes no request.

    No model: not available (the main command uses the offline designer). A base URL,
    an explicit key or a local provider (ollama, vllm...): available. A remote provider
    is available when its key is in the environment (litellm knows which variable).
    """
    if not settings.model:
        return False, f"no LLM configured (pass --model or set {ENV_MODEL})"
    env = os.environ if environ is None else environ
    if settings.api_key is not None:
        return True, f"{settings.model} with the given key"
    if settings.api_key_env:
        if env.get(settings.api_key_env):
            return True, f"{settings.model} with the key in ${settings.api_key_env}"
        return False, f"no API key for {settings.model}: ${settings.api_key_env} is not set"
    if settings.api_base:
        return True, f"{settings.model} at {settings.api_base}"
    litellm = _litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(settings.model)
    except Exception as exc:  # litellm raises BadRequestError for names it cannot route
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        return False, f"unknown model {settings.model!r}: {first[:200]}"
    if provider in LOCAL_PROVIDERS:
        return True, f"{settings.model} (local {provider} server)"
    # litellm counts a variable that is set but empty as a key; the command-line entry point
    # drops empty key variables before anything runs (synth_reward/cli.py, _drop_empty_keys).
    check = litellm.validate_environment(model=settings.model)
    if check.get("keys_in_environment"):
        return True, f"{settings.model} ({provider})"
    missing = ", ".join(f"${k}" for k in check.get("missing_keys", [])) or "the provider's API key"
    return False, f"no API key for {settings.model}: set {missing}"


def require_llm(settings: LLMSettings, environ: Mapping[str, str] | None = None) -> None:
    """UsageError (exit 2) when the user asked for a model that cannot be called."""
    ok, reason = llm_available(settings, environ)
    if not ok:
        raise UsageError(reason)


def prompt_key(settings: LLMSettings, messages: Sequence[Mapping[str, str]]) -> str:
    """Hash of everything that decides a reply: model, messages, temperature, max_tokens."""
    blob = json.dumps(
        {
            "model": settings.model,
            "messages": list(messages),
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def _estimate_tokens(text: str) -> int:
    """A deliberately high token estimate (3 characters a token) for the spend cap's worst case."""
    return len(text) // 3 + 1


class _Failure(Exception):
    def __init__(self, message: str, retryable: bool, status: int | None, retry_after: float | None) -> None:
        super().__init__(message)
        self.retryable, self.status, self.retry_after = retryable, status, retry_after


class LLMClient:
    """Calls one model. Thread-safe; one client per run, sharing the run's store."""

    def __init__(self, settings: LLMSettings, store: RunStore | None = None, *, seed: int | None = None) -> None:
        if not settings.model:
            raise UsageError(f"no LLM model configured (pass --model or set {ENV_MODEL})")
        self.settings = settings
        self.store = store
        self.usage = Usage()
        self.notes: list[str] = []
        """Things a person should know (unknown prices); each said once."""
        self._lock = threading.Lock()
        self._reserved = 0.0
        self._rng = random.Random(seed)
        self._spent_before = 0.0
        if store is not None:
            for row in store.llm_calls():
                self._spent_before += float(row.get("cost_usd") or 0.0)

    # ---- money -------------------------------------------------------------------------
    @property
    def spent_usd(self) -> float:
        """Money spent by this run so far, earlier sessions included."""
        return self._spent_before + self.usage.cost_usd

    def _prices(self) -> tuple[float, float, bool]:
        s = self.settings
        if s.input_cost_per_token is not None or s.output_cost_per_token is not None:
            return s.input_cost_per_token or 0.0, s.output_cost_per_token or 0.0, True
        try:
            prompt_cost, reply_cost = _litellm().cost_per_token(
                model=s.model, prompt_tokens=1_000_000, completion_tokens=1_000_000
            )
            return prompt_cost / 1e6, reply_cost / 1e6, True
        except Exception:  # litellm raises for models missing from its price table
            return 0.0, 0.0, False

    def _note(self, text: str) -> None:
        with self._lock:
            if text not in self.notes:
                self.notes.append(text)

    def _reserve(self, estimate: float) -> None:
        cap = self.settings.spend_cap_usd
        with self._lock:
            if cap is not None and self.spent_usd + self._reserved + estimate > cap:
                raise SpendCapReached(
                    f"spend cap of ${cap:.2f} reached: ${self.spent_usd:.4f} spent, the next request could cost "
                    f"up to ${estimate:.4f}; stopping before sending it (raise the cap and resume to go on)"
                )
            self._reserved += estimate

    # ---- the public call ---------------------------------------------------------------
    def complete(self, messages: Sequence[Mapping[str, str]], n: int = 1) -> list[Completion]:
        """K = n samples of a reply to `messages`, requested concurrently; cached samples are not requested.

        Returns one Completion per sample, in sample order; a sample that failed after its
        retries has `error` set. Raises `SpendCapReached` when the cap stops a request,
        `LLMError` for configuration problems (bad key, unknown model) or when every
        sample failed. Never hangs: each attempt has `timeout_s`, and the batch a
        deadline covering every retry.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        key = prompt_key(self.settings, msgs)
        if self.store is not None:
            self.store.save_prompt(
                key,
                msgs,
                {
                    "model": self.settings.model,
                    "temperature": self.settings.temperature,
                    "max_tokens": self.settings.max_tokens,
                },
            )
        results: dict[int, Completion] = {}
        todo: list[int] = []
        for i in range(n):
            hit = self.store.llm_reply(key, i) if self.store is not None else None
            if hit is not None and hit.get("error") is None:
                results[i] = Completion.model_validate({**hit, "cached": True, "attempts": 0, "retries": 0})
                with self._lock:
                    self.usage.cache_hits += 1
            else:
                todo.append(i)
        stop: SpendCapReached | None = None
        fatal: LLMError | None = None
        if todo:
            s = self.settings
            waves = -(-len(todo) // s.max_concurrency)
            deadline = (s.timeout_s + s.backoff_max_s + 1) * (s.max_retries + 1) * waves + 10
            pool = cf.ThreadPoolExecutor(max_workers=min(len(todo), s.max_concurrency), thread_name_prefix="llm")
            try:
                futures = {pool.submit(self._sample, key, msgs, i): i for i in todo}
                done, pending = cf.wait(futures, timeout=deadline)
                for fut in done:
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except SpendCapReached as exc:
                        stop = stop or exc
                    except LLMError as exc:
                        fatal = fatal or exc
                for fut in pending:
                    i = futures[fut]
                    results[i] = Completion(
                        key=key,
                        sample=i,
                        model=s.model or "",
                        error=f"no reply within the batch deadline of {deadline:.0f} s",
                    )
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
        got = [results[i] for i in sorted(results)]
        if fatal is not None:
            raise LLMError(str(fatal), got)
        if stop is not None:
            raise SpendCapReached(str(stop), [c for c in got if c.ok])
        if got and not any(c.ok for c in got):
            reasons = sorted({c.error or "" for c in got})
            raise LLMError(f"all {n} LLM request(s) to {self.settings.model} failed: {'; '.join(reasons)[:500]}", got)
        return got

    # ---- one sample --------------------------------------------------------------------
    def _sample(self, key: str, msgs: list[Message], sample: int) -> Completion:
        s = self.settings
        in_price, out_price, known = self._prices()
        prompt_chars = sum(len(m["content"]) for m in msgs)
        estimate = in_price * (_estimate_tokens("x" * prompt_chars) + 4 * len(msgs)) + out_price * (
            s.max_tokens or 4096
        )
        last_error = "no attempt made"
        retries = 0
        for attempt in range(1, s.max_retries + 2):
            self._reserve(estimate)
            start = time.monotonic()
            try:
                response = self._call(msgs)
            except _Failure as exc:
                latency = time.monotonic() - start
                with self._lock:
                    self._reserved -= estimate
                last_error = str(exc)
                self._record(
                    CallRecord(
                        t=time.time(),
                        key=key,
                        sample=sample,
                        attempt=attempt,
                        model=s.model or "",
                        ok=False,
                        status=exc.status,
                        error=last_error,
                        retryable=exc.retryable,
                        latency_s=latency,
                    )
                )
                if not exc.retryable:
                    raise LLMError(f"LLM request to {s.model} failed: {last_error}") from None
                if attempt > s.max_retries:
                    break
                retries += 1
                time.sleep(self._backoff(attempt, exc.retry_after))
                continue
            except BaseException:
                with self._lock:
                    self._reserved -= estimate
                raise
            latency = time.monotonic() - start
            text, finish, p_tok, c_tok, estimated = _parse_response(response, prompt_chars)
            cost = p_tok * in_price + c_tok * out_price
            if not known:
                self._note(
                    f"price of {s.model} unknown to litellm: its calls are counted as $0 and the spend cap "
                    "cannot limit them (set input/output_cost_per_token to count them)"
                )
            with self._lock:
                self._reserved -= estimate
            rec = CallRecord(
                t=time.time(),
                key=key,
                sample=sample,
                attempt=attempt,
                model=s.model or "",
                ok=True,
                finish_reason=finish,
                prompt_tokens=p_tok,
                completion_tokens=c_tok,
                cost_usd=cost,
                cost_known=known,
                latency_s=latency,
            )
            completion = Completion(
                key=key,
                sample=sample,
                text=text,
                finish_reason=finish,
                model=s.model or "",
                prompt_tokens=p_tok,
                completion_tokens=c_tok,
                tokens_estimated=estimated,
                cost_usd=cost,
                cost_known=known,
                attempts=attempt,
                retries=retries,
                latency_s=latency,
            )
            if self.store is not None:  # the reply first, then the log line: a kill between them costs nothing twice
                self.store.save_llm_reply(key, sample, completion)
            self._record(rec)
            return completion
        return Completion(
            key=key,
            sample=sample,
            model=s.model or "",
            attempts=s.max_retries + 1,
            retries=retries,
            error=f"{last_error} (gave up after {s.max_retries + 1} attempts)",
        )

    def _record(self, rec: CallRecord) -> None:
        with self._lock:
            self.usage.add(rec)
        if self.store is not None:
            self.store.log_llm_call(rec)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, s.backoff_max_s)
        with self._lock:
            jitter = self._rng.random()
        return min(s.backoff_max_s, s.backoff_s * 2 ** (attempt - 1)) * (0.5 + 0.5 * jitter)

    def _call(self, msgs: list[Message]) -> Any:
        """One HTTP attempt through litellm; failures become _Failure(retryable or not)."""
        s = self.settings
        litellm = _litellm()
        kwargs: dict[str, Any] = {
            "model": s.model,
            "messages": msgs,
            "timeout": s.timeout_s,
            "temperature": s.temperature,
            "num_retries": 0,
            "max_retries": 0,
        }
        if s.max_tokens is not None:
            kwargs["max_tokens"] = s.max_tokens
        if s.api_base:
            kwargs["api_base"] = s.api_base
        key = s.key()
        if key:
            kwargs["api_key"] = key
        try:
            return litellm.completion(**kwargs)
        except Exception as exc:  # litellm maps provider errors onto its own exception types
            raise _classify(exc, s.timeout_s) from None


def _classify(exc: Exception, timeout_s: float) -> _Failure:
    """Turn a litellm exception into a one-line reason, a retry decision and the server's Retry-After."""
    name = exc.__class__.__name__
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = " ".join(str(getattr(exc, "message", exc) or name).split())
    message = re.sub(r"^(litellm\.\w+:\s*)?(\w+Error:\s*)?(OpenAIException\s*-\s*)?", "", message)[:300] or name
    retry_after: float | None = None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        try:
            value = headers.get("retry-after")
            retry_after = float(value) if value is not None else None
        except (TypeError, ValueError):
            retry_after = None
    if name in {"Timeout", "APITimeoutError"} or "timed out" in message.lower() or "timeout" in name.lower():
        return _Failure(f"timed out after {timeout_s:g} s", True, status, None)
    if name in {
        "APIConnectionError",
        "ServiceUnavailableError",
        "InternalServerError",
        "BadGatewayError",
        "RateLimitError",
        "APIError",
    } and (status is None or status in RETRYABLE_STATUS or status >= 500):
        label = {429: "rate limited (429)"}.get(
            status or 0, f"server error {status}" if status else "connection failed"
        )
        return _Failure(f"{label}: {message}", True, status, retry_after)
    if status is not None and status in RETRYABLE_STATUS:
        return _Failure(f"HTTP {status}: {message}", True, status, retry_after)
    return _Failure(f"{name}{f' {status}' if status else ''}: {message}", False, status, None)


def _parse_response(response: Any, prompt_chars: int) -> tuple[str, str | None, int, int, bool]:
    """(text, finish_reason, prompt_tokens, completion_tokens, estimated) from a litellm ModelResponse."""
    choices = getattr(response, "choices", None) or []
    text, finish = "", None
    if choices:
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = (getattr(message, "content", None) or "") if message is not None else ""
        finish = getattr(choice, "finish_reason", None)
    usage = getattr(response, "usage", None)
    p_tok = int(getattr(usage, "prompt_tokens", 0) or 0) if usage is not None else 0
    c_tok = int(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0
    estimated = False
    if p_tok == 0 and c_tok == 0:
        p_tok, c_tok, estimated = prompt_chars // 4, len(text) // 4, True
    return text if isinstance(text, str) else str(text), finish, p_tok, c_tok, estimated
