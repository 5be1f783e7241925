// The agent console, served by `callq serve` at /console: sign-in with the agent's id and
// token (kept in this tab's sessionStorage), a Twilio Voice SDK Device registered with a Voice
// access token from callq and renewed before it expires, heartbeats that carry the Device's
// real registration state, status buttons, the ringing call (caller, queue, wait) with
// accept/reject, the wrap-up countdown and the agent's queues.
//
// Everything shown is set as text (never as HTML). The page's clock runs in a worker
// (/console/ticker.js) because browsers slow a background tab's own timers to once a minute,
// which would let the heartbeat lapse while the agent works in another tab.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const KEY_ID = "callq.agent_id";
  const KEY_TOKEN = "callq.agent_token";
  // The <Parameter>s callq's worker puts on the agent's leg (contract.rs, LegParameters).
  const PARAM_CALL = "callq_call";
  const PARAM_FROM = "callq_from";
  const PARAM_QUEUE = "callq_queue";
  const PARAM_WAITED_MS = "callq_waited_ms";
  const POLL_MS = 3000;
  const RENEW_CHECK_MS = 60000;
  const RENEW_AGENT_TOKEN_BEFORE_S = 15 * 60;
  const LABELS = {
    available: "Available",
    paused: "Paused",
    offline: "Offline",
    reserved: "Ringing",
    busy: "On a call",
    wrapup: "Wrap-up",
  };

  let session = null; // { id, token } while signed in
  let device = null; // the Voice SDK Device of this session
  let ringing = null; // the call on screen: { call, from, queue, waitedMs, since, acceptedAt }
  let wrapupUntil = null; // performance.now() at which wrap-up ends, while in wrap-up
  let beatEvery = 5000;
  let nextBeatAt = 0;
  let nextPollAt = 0;
  let nextRenewAt = 0;
  let lastBeat = null; // { at, registered, ok, text }
  let serverView = null; // the agent as callq last answered
  let sdkLoading = null;

  class SignedOut extends Error {}

  function label(status) {
    return LABELS[status] || String(status);
  }

  function message(e) {
    if (e && typeof e.message === "string" && e.message) return e.message;
    return String(e);
  }

  function errorCode(data) {
    return data && data.error && typeof data.error.code === "string" ? data.error.code : "";
  }

  function errorText(data, status) {
    if (data && data.error && typeof data.error.message === "string") return data.error.message;
    return "HTTP " + status;
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    const rest = String(s % 60).padStart(2, "0");
    return m + " min " + rest + " s";
  }

  function clock(date) {
    return date.toLocaleTimeString();
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  // One request to the agent API as the signed-in agent. A refused token ends the session.
  async function api(method, path, body) {
    const s = session;
    if (!s) throw new SignedOut("signed out");
    const init = {
      method,
      cache: "no-store",
      headers: { authorization: "Bearer " + s.token },
    };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch("/v1/agents/" + encodeURIComponent(s.id) + path, init);
    const data = await readJson(response);
    if (session !== s) throw new SignedOut("signed out");
    if (response.status === 401 || errorCode(data) === "agent_not_found") {
      signOut("Signed out: " + errorText(data, response.status), false);
      throw new SignedOut("signed out");
    }
    return { status: response.status, data };
  }

  // ---- sign-in -------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const id = $("agent-id").value.trim();
    const token = $("agent-token").value.trim();
    const error = $("sign-in-error");
    if (!id || !token) {
      error.textContent = "Enter your agent id and your agent token.";
      return;
    }
    $("sign-in-button").disabled = true;
    error.textContent = "";
    try {
      await resume({ id, token });
    } finally {
      $("sign-in-button").disabled = false;
    }
  }

  // Check the credentials with callq, then start the console with them.
  async function resume(credentials) {
    const error = $("sign-in-error");
    let response;
    try {
      response = await fetch("/v1/agents/" + encodeURIComponent(credentials.id), {
        cache: "no-store",
        headers: { authorization: "Bearer " + credentials.token },
      });
    } catch (e) {
      error.textContent = "Cannot reach callq: " + message(e);
      return;
    }
    const data = await readJson(response);
    if (response.status !== 200 || !data) {
      error.textContent = "Sign-in refused: " + errorText(data, response.status);
      sessionStorage.removeItem(KEY_TOKEN);
      return;
    }
    sessionStorage.setItem(KEY_ID, credentials.id);
    sessionStorage.setItem(KEY_TOKEN, credentials.token);
    $("agent-token").value = "";
    start(credentials, data);
  }

  function start(credentials, view) {
    session = { id: credentials.id, token: credentials.token };
    $("sign-in").hidden = true;
    $("console").hidden = false;
    $("who").hidden = false;
    $("who-id").textContent = session.id;
    $("status-message").textContent = "";
    renderAgent(view);
    nextBeatAt = 0;
    nextPollAt = 0;
    nextRenewAt = 0;
    $("main").focus();
    startPhone();
    tick();
  }

  // Sign out: optionally go offline first, then forget the token and stop the phone.
  async function signOut(text, goOffline) {
    const s = session;
    if (!s) return;
    if (goOffline) {
      try {
        await api("PUT", "/status", { status: "offline" });
      } catch (_) {
        // signing out anyway: the heartbeat lapses within its TTL
      }
    }
    session = null;
    if (ringing) {
      const r = ringing;
      ringing = null;
      try {
        if (r.acceptedAt === null) r.call.reject();
        else r.call.disconnect();
      } catch (_) {
        // the call is gone already
      }
    }
    if (device) {
      const d = device;
      device = null;
      try {
        d.destroy();
      } catch (_) {
        // nothing left to release
      }
    }
    sessionStorage.removeItem(KEY_ID);
    sessionStorage.removeItem(KEY_TOKEN);
    serverView = null;
    lastBeat = null;
    wrapupUntil = null;
    $("incoming").hidden = true;
    $("console").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    $("agent-id").value = s.id;
    $("sign-in-error").textContent = text || "";
    $("agent-token").focus();
  }

  // ---- the clock -----------------------------------------------------------------------

  function tick() {
    if (!session) return;
    const now = Date.now();
    if (now >= nextBeatAt) beat();
    if (now >= nextPollAt) poll();
    if (now >= nextRenewAt) {
      nextRenewAt = now + RENEW_CHECK_MS;
      renewAgentToken();
    }
    renderWrapup();
    renderWait();
  }

  function startClock() {
    try {
      const ticker = new Worker("/console/ticker.js");
      ticker.onmessage = tick;
      ticker.postMessage(1000);
      return;
    } catch (_) {
      // no workers here: the page's own timer (slowed in a background tab)
    }
    setInterval(tick, 1000);
  }

  // ---- heartbeat -----------------------------------------------------------------------

  function deviceRegistered() {
    return device !== null && device.state === "registered";
  }

  async function beat() {
    if (!session) return;
    nextBeatAt = Date.now() + beatEvery;
    const registered = deviceRegistered();
    try {
      const r = await api("POST", "/heartbeat", { device_registered: registered });
      if (r.status === 200 && r.data) {
        if (typeof r.data.ttl_ms === "number" && r.data.ttl_ms > 0) {
          beatEvery = Math.min(Math.max(r.data.ttl_ms / 3, 1000), 60000);
          nextBeatAt = Date.now() + beatEvery;
        }
        lastBeat = { at: new Date(), registered, ok: true, text: "" };
        // what callq now holds of this agent's presence is what this heartbeat said
        if (serverView) {
          serverView.online = true;
          serverView.device_registered = registered;
        }
        renderStatus(r.data.status);
      } else {
        lastBeat = { at: new Date(), registered, ok: false, text: errorText(r.data, r.status) };
      }
    } catch (e) {
      if (e instanceof SignedOut) return;
      lastBeat = { at: new Date(), registered, ok: false, text: message(e) };
    }
    renderPresence();
  }

  // ---- the phone (Twilio Voice SDK) ------------------------------------------------------

  function loadSdk() {
    if (window.Twilio && window.Twilio.Device) return Promise.resolve();
    if (sdkLoading) return sdkLoading;
    const meta = document.querySelector('meta[name="callq-voice-sdk"]');
    const url = meta ? meta.getAttribute("content") : "";
    const integrity = meta ? meta.getAttribute("data-integrity") : "";
    sdkLoading = new Promise((resolve, reject) => {
      if (!url) {
        reject(new Error("no Voice SDK configured"));
        return;
      }
      const script = document.createElement("script");
      script.src = url;
      if (integrity) {
        script.integrity = integrity;
        script.crossOrigin = "anonymous";
      }
      script.onload = () => {
        if (window.Twilio && window.Twilio.Device) resolve();
        else reject(new Error("the Voice SDK script defines no Twilio.Device"));
      };
      script.onerror = () => reject(new Error("the Voice SDK could not be loaded"));
      document.head.appendChild(script);
    });
    sdkLoading.catch(() => {
      sdkLoading = null;
    });
    return sdkLoading;
  }

  async function voiceToken() {
    const r = await api("POST", "/voice-token");
    if (r.status === 200 && r.data && typeof r.data.token === "string") return r.data.token;
    throw new Error("no phone token: " + errorText(r.data, r.status));
  }

  async function startPhone() {
    const s = session;
    renderDevice("starting", "");
    let token;
    try {
      await loadSdk();
      token = await voiceToken();
    } catch (e) {
      if (e instanceof SignedOut || session !== s) return;
      renderDevice("not available", message(e));
      return;
    }
    if (session !== s) return;
    let d;
    try {
      d = new window.Twilio.Device(token, { closeProtection: true, tokenRefreshMs: 60000 });
    } catch (e) {
      renderDevice("not available", message(e));
      return;
    }
    device = d;
    const changed = () => {
      if (device !== d) return;
      renderDevice();
      beat();
    };
    d.on("registering", changed);
    d.on("registered", changed);
    d.on("unregistered", changed);
    d.on("error", (err) => {
      if (device !== d) return;
      const code = err && err.code ? err.code + " " : "";
      $("device-detail").textContent = "Error " + code + message(err);
      // an expired or refused access token: fetch a fresh one
      if (err && [20101, 20104, 31204, 31205].includes(err.code)) renewVoiceToken(d);
      changed();
    });
    d.on("tokenWillExpire", () => renewVoiceToken(d));
    d.on("incoming", (call) => {
      if (device === d) incoming(call);
    });
    renderDevice();
    try {
      await d.register();
    } catch (e) {
      if (device !== d) return;
      $("device-detail").textContent = "Registration failed: " + message(e);
      changed();
    }
  }

  async function renewVoiceToken(d) {
    try {
      const token = await voiceToken();
      if (device !== d) return;
      d.updateToken(token);
      $("device-detail").textContent = "Phone token renewed at " + clock(new Date()) + ".";
    } catch (e) {
      if (e instanceof SignedOut || device !== d) return;
      $("device-detail").textContent = message(e) + "; trying again in 30 s.";
      setTimeout(() => {
        if (device === d) renewVoiceToken(d);
      }, 30000);
    }
  }

  async function reconnect() {
    if (!session) return;
    if (!device) {
      startPhone();
      return;
    }
    const d = device;
    try {
      d.updateToken(await voiceToken());
      if (device === d && d.state === "unregistered") await d.register();
    } catch (e) {
      if (!(e instanceof SignedOut) && device === d) {
        $("device-detail").textContent = "Reconnect failed: " + message(e);
      }
    }
  }

  function renderDevice(state, detail) {
    const shown = state || (device ? device.state : "not started");
    const el = $("device");
    el.textContent = shown;
    el.className = shown === "registered" ? "registered" : "unregistered";
    if (detail !== undefined) $("device-detail").textContent = detail;
    $("reconnect").hidden = shown === "registered" || shown === "registering" || shown === "starting";
  }

  // ---- calls -----------------------------------------------------------------------------

  function incoming(call) {
    if (ringing) {
      // one call on screen at a time; the worker offers the next when this one is done
      call.reject();
      return;
    }
    const custom = call.customParameters instanceof Map ? call.customParameters : new Map();
    const params = call.parameters || {};
    const waited = Number(custom.get(PARAM_WAITED_MS));
    const r = {
      call,
      sid: custom.get(PARAM_CALL) || params.CallSid || "",
      from: custom.get(PARAM_FROM) || params.From || "unknown caller",
      queue: custom.get(PARAM_QUEUE) || "",
      waitedMs: custom.has(PARAM_WAITED_MS) && Number.isFinite(waited) ? waited : null,
      since: performance.now(),
      acceptedAt: null,
    };
    ringing = r;
    $("call-title").textContent = "Incoming call";
    $("call-from").textContent = r.from;
    $("call-queue").textContent = r.queue || "not given";
    renderWait();
    $("accept").hidden = false;
    $("reject").hidden = false;
    $("hang-up").hidden = true;
    $("call-state").textContent = "Ringing";
    $("incoming").hidden = false;
    $("accept").focus();
    poll();

    call.on("accept", () => {
      if (ringing !== r) return;
      r.acceptedAt = performance.now();
      $("call-title").textContent = "On a call";
      $("accept").hidden = true;
      $("reject").hidden = true;
      $("hang-up").hidden = false;
      $("call-state").textContent = "Connected";
      $("hang-up").focus();
      poll();
    });
    call.on("cancel", () => callOver(r, "The caller hung up, or the ring timed out."));
    call.on("reject", () => callOver(r, "Call rejected."));
    call.on("disconnect", () => callOver(r, "Call ended."));
    call.on("error", (e) => {
      if (ringing === r) $("call-state").textContent = "Call error: " + message(e);
    });
  }

  function callOver(r, text) {
    if (ringing !== r) return;
    ringing = null;
    $("incoming").hidden = true;
    $("status-message").textContent = text;
    poll();
  }

  function renderWait() {
    if (!ringing) return;
    if (ringing.waitedMs === null) {
      $("call-wait").textContent = "not given";
      return;
    }
    const until = ringing.acceptedAt === null ? performance.now() : ringing.acceptedAt;
    $("call-wait").textContent = duration(ringing.waitedMs + (until - ringing.since));
  }

  // ---- status ----------------------------------------------------------------------------

  async function setStatus(status) {
    const body = { status };
    if (status === "paused") {
      const reason = $("pause-reason").value.trim();
      if (reason) body.reason = reason;
    }
    const out = $("status-message");
    out.textContent = "Asking for " + label(status) + "…";
    try {
      const r = await api("PUT", "/status", body);
      if (r.status === 200 && r.data) {
        renderStatus(r.data.status);
        out.textContent = "Status set: " + label(r.data.status) + ".";
      } else if (r.status === 409 && errorCode(r.data) === "deferred_until_call_ends") {
        out.textContent = "Deferred: you go " + label(status) + " when this call ends.";
      } else {
        out.textContent = "Not changed: " + errorText(r.data, r.status);
      }
    } catch (e) {
      if (!(e instanceof SignedOut)) out.textContent = "Not changed: " + message(e);
      return;
    }
    poll();
  }

  function renderStatus(status, reason) {
    $("status").textContent = label(status);
    if (reason !== undefined) $("reason").textContent = reason ? "(" + reason + ")" : "";
    for (const id of ["go-available", "go-paused", "go-offline"]) {
      const button = $(id);
      button.setAttribute("aria-pressed", String(button.dataset.status === status));
    }
  }

  function renderAgent(view) {
    serverView = view;
    renderStatus(view.status, view.reason);
    const pending = $("pending");
    if (view.pending) {
      pending.textContent = "You go " + label(view.pending) + " when this call ends.";
      pending.hidden = false;
    } else {
      pending.hidden = true;
    }
    if (view.status === "wrapup" && typeof view.wrapup_left_ms === "number") {
      wrapupUntil = performance.now() + view.wrapup_left_ms;
    } else {
      wrapupUntil = null;
    }
    renderWrapup();
    renderPresence();
  }

  function renderWrapup() {
    const box = $("wrapup");
    if (wrapupUntil === null) {
      box.hidden = true;
      return;
    }
    const left = wrapupUntil - performance.now();
    $("wrapup-left").textContent = left > 0 ? duration(left) : "ending now";
    box.hidden = false;
  }

  function renderPresence() {
    const parts = [];
    if (serverView) {
      if (!serverView.online) parts.push("no live heartbeat");
      else if (serverView.device_registered) parts.push("online, phone registered");
      else parts.push("online, phone NOT registered: no calls are offered");
    }
    if (lastBeat) {
      const what = lastBeat.ok
        ? "last heartbeat " + clock(lastBeat.at) + " (phone " +
          (lastBeat.registered ? "registered" : "not registered") + ")"
        : "heartbeat failed at " + clock(lastBeat.at) + ": " + lastBeat.text;
      parts.push(what);
    }
    $("presence").textContent = parts.join("; ");
  }

  // ---- queues and the agent's own view ---------------------------------------------------

  async function poll() {
    if (!session) return;
    nextPollAt = Date.now() + POLL_MS;
    try {
      const [me, queues] = await Promise.all([api("GET", ""), api("GET", "/queues")]);
      if (me.status === 200 && me.data) renderAgent(me.data);
      if (queues.status === 200 && queues.data && Array.isArray(queues.data.queues)) {
        renderQueues(queues.data.queues);
      }
    } catch (e) {
      if (!(e instanceof SignedOut)) {
        $("queues-updated").textContent = "Not updated: " + message(e);
      }
    }
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = String(text);
    return td;
  }

  function renderQueues(queues) {
    const body = $("queues");
    body.replaceChildren();
    for (const q of queues) {
      const tr = document.createElement("tr");
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = String(q.queue);
      tr.append(
        name,
        cell(q.tier),
        cell(q.waiting),
        cell(duration((Number(q.oldest_wait_s) || 0) * 1000)),
        cell(q.available),
      );
      body.append(tr);
    }
    $("queues-updated").textContent = "Updated " + clock(new Date()) + ".";
  }

  // ---- the agent token ---------------------------------------------------------------------

  // Trade the agent token for a fresh one when little of it is left (v2.<id>.<gen>.<exp>.<mac>).
  async function renewAgentToken() {
    const s = session;
    if (!s) return;
    const parts = s.token.split(".");
    const expires = parts.length === 5 ? Number(parts[3]) : NaN;
    if (!Number.isFinite(expires) || expires - Date.now() / 1000 > RENEW_AGENT_TOKEN_BEFORE_S) {
      return;
    }
    try {
      const r = await api("POST", "/token", {});
      if (r.status === 200 && r.data && typeof r.data.token === "string" && session === s) {
        s.token = r.data.token;
        sessionStorage.setItem(KEY_TOKEN, s.token);
      }
    } catch (_) {
      // tried again at the next check
    }
  }

  // ---- wiring ------------------------------------------------------------------------------

  function wire() {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut("Signed out.", true));
    for (const id of ["go-available", "go-paused", "go-offline"]) {
      const button = $(id);
      button.addEventListener("click", () => setStatus(button.dataset.status));
    }
    $("accept").addEventListener("click", () => {
      if (ringing && ringing.acceptedAt === null) ringing.call.accept();
    });
    $("reject").addEventListener("click", () => {
      if (ringing && ringing.acceptedAt === null) ringing.call.reject();
    });
    $("hang-up").addEventListener("click", () => {
      if (ringing) ringing.call.disconnect();
    });
    $("reconnect").addEventListener("click", reconnect);
    startClock();
    const id = sessionStorage.getItem(KEY_ID);
    const token = sessionStorage.getItem(KEY_TOKEN);
    if (id) $("agent-id").value = id;
    if (id && token) resume({ id, token });
    else $(id ? "agent-token" : "agent-id").focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
