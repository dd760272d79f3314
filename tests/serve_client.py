#!/usr/bin/env python3
"""serve_client.py — clients for tests/serve.sh against a running `bitnet serve` (127.0.0.1 only).

  serve_client.py openai URL WANT      the `openai` package: non-streamed and streamed chat, the
                                       greedy reply must equal WANT (bitnet run --temp 0's text)
  serve_client.py load URL [--clients 16] [--requests 20] [--duration S] [--max-tokens 16]
                                       C concurrent streaming clients, each R requests (or until S
                                       seconds pass); every stream must be well-formed SSE ending
                                       in [DONE] with finish_reason and usage; prints requests/s,
                                       p50/p99 time to first token, generated tok/s, 0 failures
  serve_client.py chunked URL --chunk C
                                       while stream A runs, B joins with a ~250-token prompt: B's
                                       prompt must take ceil(n/C) engine steps and A must get a
                                       token in every step, those included (the "timings" step
                                       numbers: counts, not wall-clock thresholds)
  serve_client.py speed URL [--streams 8] [--max-tokens 128] [--rounds 3] [--ban ID | --ignore-eos]
                        [--temperature T] [--pid PID]
                                       aggregate generated tok/s with 1 stream (N requests in
                                       turn), then N at once (one request each),
                                       ROUNDS times interleaved; prints each round and the medians
                                       (--ban ID: logit_bias -100 on ID, e.g. the end-of-text token,
                                       so that every stream runs to max_tokens; --ignore-eos: the
                                       request's "ignore_eos" instead, which keeps temperature 0
                                       on the greedy path; --temperature: 0.8 unless given; --pid: the
                                       server's process, to add tokens per server CPU-second);
                                       with each round, the engine's per-step split from /health
                                       (ms in the forward, sampling, streaming, the rest)

Standard library only (asyncio streams, HTTP/1.1 with chunked decoding) except the openai mode.
Output lines are "ok NAME ...", "FAIL NAME: ..." for tests/run.sh. Bounded: every request has a
timeout and the whole run a deadline. Not: a general HTTP client."""
import asyncio, json, os, sys, time, argparse
from urllib.parse import urlparse


async def stream_request(host, port, path, body, timeout, first_text=None, extra=None):
    """POST body (dict) with stream: true; returns (ttft_s, text, finish, usage, error). Sets the
    asyncio.Event first_text when the first text arrives; extra (a dict) gets the "timings"."""
    t0 = time.monotonic()
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        data = json.dumps(body).encode()
        w.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % (path.encode(), host.encode(), port, len(data)) + data)
        await w.drain()
        status = await asyncio.wait_for(r.readline(), timeout)
        if b" 200 " not in status:
            return None, "", None, None, "status " + status.decode(errors="replace").strip()
        chunked = False
        while True:
            h = await asyncio.wait_for(r.readline(), timeout)
            if h in (b"\r\n", b""):
                break
            if h.lower().startswith(b"transfer-encoding:") and b"chunked" in h.lower():
                chunked = True
        buf, ttft, text, finish, usage, done = b"", None, "", None, None, False
        deadline = t0 + timeout
        while True:
            if chunked:
                line = await asyncio.wait_for(r.readline(), max(0.1, deadline - time.monotonic()))
                size = int(line.strip() or b"0", 16)
                if size == 0:
                    break
                piece = await asyncio.wait_for(r.readexactly(size + 2), max(0.1, deadline - time.monotonic()))
                buf += piece[:-2]
            else:
                piece = await asyncio.wait_for(r.read(65536), max(0.1, deadline - time.monotonic()))
                if not piece:
                    break
                buf += piece
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                if not ev.startswith(b"data: "):
                    return ttft, text, finish, usage, "bad event %r" % ev[:80]
                if ev == b"data: [DONE]":
                    done = True
                    continue
                if done:
                    return ttft, text, finish, usage, "event after [DONE]"
                o = json.loads(ev[6:])
                if "error" in o:
                    return ttft, text, finish, usage, "error event: %s" % o["error"]["message"]
                if o.get("usage"):
                    usage = o["usage"]
                if o.get("timings") and extra is not None:
                    extra["timings"] = o["timings"]
                for c in o.get("choices", []):
                    t = c.get("text") or (c.get("delta") or {}).get("content") or ""
                    if t and ttft is None:
                        ttft = time.monotonic() - t0
                        if first_text:
                            first_text.set()
                    if finish and t:
                        return ttft, text, finish, usage, "text after finish_reason"
                    text += t
                    finish = c.get("finish_reason") or finish
        if not done:
            return ttft, text, finish, usage, "no [DONE]"
        if buf.strip():
            return ttft, text, finish, usage, "bytes after the last event"
        if finish not in ("stop", "length"):
            return ttft, text, finish, usage, "finish_reason %r" % finish
        if not usage or usage.get("completion_tokens", -1) < 0:
            return ttft, text, finish, usage, "no usage chunk"
        return ttft, text, finish, usage, None
    finally:
        w.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


async def load(url, clients, requests, duration, max_tokens, timeout, bias=None, temperature=0.8, ignore_eos=False):
    u = urlparse(url)
    assert u.hostname == "127.0.0.1", "only 127.0.0.1"
    ttfts, fails, ntok, nreq = [], [], 0, 0
    t0 = time.monotonic()
    prompts = ["Once upon a time", "The little dog", "One day, a girl named Sue", "Tom had a red ball"]

    async def client(ci):
        nonlocal ntok, nreq
        k = 0
        while (k < requests) if not duration else (time.monotonic() - t0 < duration):
            chat = (ci + k) % 2 == 0
            body = {"max_tokens": max_tokens, "temperature": temperature, "seed": ci * 1000 + k, "stream": True,
                    "stream_options": {"include_usage": True}}
            if bias:
                body["logit_bias"] = bias
            if ignore_eos:
                body["ignore_eos"] = True
            if chat:
                body["messages"] = [{"role": "user", "content": prompts[(ci + k) % 4]}]
            else:
                body["prompt"] = prompts[(ci + k) % 4]
            try:
                ttft, text, finish, usage, err = await stream_request(
                    u.hostname, u.port, "/v1/chat/completions" if chat else "/v1/completions", body, timeout)
            except Exception as e:  # timeouts, resets
                err = "%s: %s" % (type(e).__name__, e)
            if err:
                fails.append("client %d request %d: %s" % (ci, k, err))
            else:
                nreq += 1
                ntok += usage["completion_tokens"]
                if ttft is not None:
                    ttfts.append(ttft)
            k += 1

    await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(clients))), timeout * max(1, requests) + (duration or 0) + 30)
    el = time.monotonic() - t0
    return el, nreq, ntok, ttfts, fails


async def post_json(host, port, path, body, timeout):
    """POST body (dict), not streamed; returns the parsed JSON answer (any status)."""
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        data = json.dumps(body).encode()
        w.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % (path.encode(), host.encode(), port, len(data)) + data)
        await w.drain()
        raw = await asyncio.wait_for(r.read(), timeout)
        return json.loads(raw.split(b"\r\n\r\n", 1)[1])
    finally:
        w.close()


def chunked(url, chunk, timeout):
    u = urlparse(url)
    assert u.hostname == "127.0.0.1", "only 127.0.0.1"

    async def go():
        first, ta = asyncio.Event(), {}
        a = asyncio.ensure_future(stream_request(u.hostname, u.port, "/v1/completions", {
            "prompt": "Once upon a time", "max_tokens": 480, "temperature": 0, "logit_bias": {"2047": -100},
            "stream": True, "stream_options": {"include_usage": True}}, timeout, first, ta))
        await asyncio.wait_for(first.wait(), timeout)
        b = await post_json(u.hostname, u.port, "/v1/completions", {
            "prompt": "the little dog ran to the park and " * 30, "max_tokens": 1, "temperature": 0}, timeout)
        res = await a
        return res, ta.get("timings"), b

    (_, _, _, _, err), ta, b = asyncio.run(go())
    tb = b.get("timings")
    if err or not ta or not tb:
        for n in ("pieces", "overlap", "stream_flows"):
            print("FAIL serve_chunked_prefill_%s: stream A %s, timings A %s, answer B %s" % (n, err or "ok", ta, str(b)[:200]))
        return
    b_first = tb["prefill_end_step"] - tb["prefill_steps"] + 1
    info = "B: %d prompt tokens in %d steps (%d..%d); A: %d tokens in steps %d..%d" % (
        tb["prompt_n"], tb["prefill_steps"], b_first, tb["prefill_end_step"], ta["predicted_n"], ta["prefill_end_step"], ta["last_step"])
    want = -(-tb["prompt_n"] // chunk)
    checks = [("pieces", tb["prefill_steps"] == want and want >= 20),                 # B's prompt in pieces of chunk
              ("overlap", ta["prefill_end_step"] <= b_first and ta["last_step"] >= tb["prefill_end_step"]),  # A ran across it
              ("stream_flows", ta["last_step"] - ta["prefill_end_step"] + 1 == ta["predicted_n"])]          # a token every step
    for n, ok in checks:
        print("%s serve_chunked_prefill_%s%s %s" % ("ok" if ok else "FAIL", n, "" if ok else ":", info))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["openai", "load", "speed", "chunked"])
    ap.add_argument("url")
    ap.add_argument("want", nargs="?")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--ban", type=int, default=None)
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()
    if a.mode == "openai":
        import openai
        c = openai.OpenAI(base_url=a.url + "/v1", api_key="none", timeout=60, max_retries=0)
        msgs = [{"role": "user", "content": "Tell me a story."}]
        r = c.chat.completions.create(model="bitnet-tinystories", messages=msgs, max_tokens=20, temperature=0)
        got = r.choices[0].message.content
        print(("ok" if got == a.want and r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 20
               else "FAIL") + " serve_openai_chat" + ("" if got == a.want else ": got %r want %r" % (got, a.want)))
        parts, fin = [], None
        for ch in c.chat.completions.create(model="bitnet-tinystories", messages=msgs, max_tokens=20, temperature=0, stream=True):
            if ch.choices and ch.choices[0].delta.content:
                parts.append(ch.choices[0].delta.content)
            if ch.choices and ch.choices[0].finish_reason:
                fin = ch.choices[0].finish_reason
        got = "".join(parts)
        print(("ok" if got == a.want and fin == "length" else "FAIL") + " serve_openai_chat_stream" +
              ("" if got == a.want else ": got %r want %r" % (got, a.want)))
        r = c.completions.create(model="bitnet-tinystories", prompt="Once upon a time", max_tokens=8, temperature=0)
        print(("ok" if r.choices[0].text and r.usage.completion_tokens == 8 else "FAIL") + " serve_openai_completion")
        try:
            c.chat.completions.create(model="x", messages=msgs, temperature=7)
            print("FAIL serve_openai_error: no error for temperature 7")
        except openai.BadRequestError as e:
            print("ok serve_openai_error" if "temperature" in str(e) else "FAIL serve_openai_error: %s" % e)
        return
    if a.mode == "chunked":
        chunked(a.url, a.chunk, a.timeout)
        return
    if a.mode == "load":
        el, nreq, ntok, ttfts, fails = asyncio.run(load(a.url, a.clients, a.requests, a.duration, a.max_tokens, a.timeout))
        want = a.clients * a.requests if not a.duration else nreq
        stats = "%d clients: %d requests in %.1f s (%.1f req/s), %d tokens (%.0f tok/s), TTFT p50 %.0f ms p99 %.0f ms, %d failures" % (
            a.clients, nreq, el, nreq / el, ntok, ntok / el, 1000 * pct(ttfts, 50), 1000 * pct(ttfts, 99), len(fails))
        name = "serve_load" if a.duration else "serve_concurrent_%dx%d" % (a.clients, a.requests)
        if fails or nreq != want:
            print("FAIL %s: %s; first: %s" % (name, stats, fails[:3]))
        else:
            print("ok %s: %s" % (name, stats))
        return
    # speed: one stream alone, then N together (same settings), interleaved for ROUNDS rounds
    bias = {str(a.ban): -100} if a.ban is not None else None
    hz = os.sysconf("SC_CLK_TCK")
    def cpu():  # the server's user + system CPU seconds (--pid), else None
        if not a.pid:
            return None
        f = open("/proc/%d/stat" % a.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / hz
    def engine():  # the server's engine counters (/health "engine")
        import urllib.request
        with urllib.request.urlopen(a.url + "/health", timeout=a.timeout) as f:
            d = json.loads(f.read())
        return dict(d["engine"], steps=d["decode_steps"], tokens=d["tokens_generated"]) if "engine" in d else None
    def run(n):  # n streams at once; one stream runs a.streams requests in turn (as many tokens)
        c0, e0 = cpu(), engine()
        el, nreq, ntok, _, fails = asyncio.run(load(a.url, n, 1 if n > 1 else a.streams, 0, a.max_tokens, a.timeout, bias,
                                                     a.temperature, a.ignore_eos))
        c1, e1 = cpu(), engine()
        if not e0:  # a server without the counters
            return ntok / el, (ntok / (c1 - c0) if c0 is not None and c1 > c0 else None), fails, "no counters"
        d = {k: e1[k] - e0[k] for k in e0}
        st = max(1, d["steps"])
        prof = "%d steps (%d greedy), %.1f sampled/step, wall %.2f ms/step = forward %.2f + sampling %.2f + streaming %.2f + other %.2f" % (
            d["steps"], d.get("greedy_steps", 0), d["sampled"] / st, 1e3 * el / st, d["decode_ms"] / st, d["sample_ms"] / st, d["stream_ms"] / st,
            (1e3 * el - d["decode_ms"] - d["sample_ms"] - d["stream_ms"]) / st)
        return ntok / el, (ntok / (c1 - c0) if c0 is not None and c1 > c0 else None), fails, prof
    rows, fails = [], []
    for r in range(a.rounds):
        one, one_c, f1, p1 = run(1)
        many, many_c, f2, p2 = run(a.streams)
        rows.append((one, many, many / one, one_c, many_c, many_c / one_c if one_c and many_c else None)); fails += f1 + f2
        if a.rounds > 1:
            print("  round %d: 1 stream %.0f tok/s, %d streams %.0f tok/s (%.2fx)%s" % (r + 1, one, a.streams, many, many / one,
                  "; per server CPU-second %.0f and %.0f tok (%.2fx)" % rows[-1][3:] if rows[-1][5] else ""))
        print("    engine, 1 stream: %s\n    engine, %d streams: %s" % (p1, a.streams, p2))
    med = [pct([x[i] for x in rows], 50) if all(x[i] for x in rows) else None for i in range(6)]
    print("%s serve_speed: 1 stream %.0f tok/s, %d streams %.0f tok/s aggregate (%.2fx%s)%s%s" % (
        "ok" if not fails else "FAIL", med[0], a.streams, med[1], med[2],
        ", medians of %d rounds" % a.rounds if a.rounds > 1 else "",
        "; per server CPU-second %.0f and %.0f tok (%.2fx)" % tuple(med[3:]) if med[5] else "",
        "" if not fails else " failures %s" % fails[:3]))


if __name__ == "__main__":
    main()
