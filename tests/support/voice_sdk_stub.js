// A stand-in for the Twilio Voice SDK (@twilio/voice-sdk 2.x) that tests/console.rs gives the
// agent console through CALLQ_VOICE_SDK_URL: `Twilio.Device` and its calls with the surface
// the console uses (new Device(token, options), state, register(), updateToken(), destroy(),
// on('registering' | 'registered' | 'unregistered' | 'error' | 'incoming' | 'tokenWillExpire');
// call.parameters, call.customParameters (a Map), accept(), reject(), disconnect(), and
// on('accept' | 'reject' | 'cancel' | 'disconnect' | 'error')). The test drives it through
// `window.voiceStub` and reads back what the console did with it.
(function () {
  "use strict";

  class Emitter {
    constructor() {
      this.handlers = {};
    }
    on(name, fn) {
      (this.handlers[name] = this.handlers[name] || []).push(fn);
      return this;
    }
    emit(name, ...args) {
      for (const fn of (this.handlers[name] || []).slice()) fn(...args);
    }
  }

  class Call extends Emitter {
    constructor(parameters, custom) {
      super();
      this.parameters = parameters;
      this.customParameters = new Map(Object.entries(custom));
      this.accepted = false;
      this.rejected = false;
      this.disconnected = false;
      this.state = "pending";
    }
    status() {
      return this.state;
    }
    accept() {
      this.accepted = true;
      this.state = "open";
      this.emit("accept", this);
    }
    reject() {
      this.rejected = true;
      this.state = "closed";
      this.emit("reject");
    }
    disconnect() {
      this.disconnected = true;
      this.state = "closed";
      this.emit("disconnect", this);
    }
  }

  const stub = {
    devices: [],
    calls: [],
    tokens: [],
    updates: 0,
    device() {
      return this.devices[this.devices.length - 1] || null;
    },
    // The Device's registration changes as the SDK reports it: 'registered'/'unregistered'.
    setRegistered(on) {
      const d = this.device();
      d.setState(on ? "registered" : "unregistered");
      return d.state;
    },
    // Twilio offers a call to the Device: returns its index for `call(i)`.
    incoming(parameters, custom) {
      const c = new Call(parameters, custom);
      this.calls.push(c);
      this.device().emit("incoming", c);
      return this.calls.length - 1;
    },
    call(i) {
      const c = this.calls[i];
      return { accepted: c.accepted, rejected: c.rejected, disconnected: c.disconnected };
    },
    // The other side ended the call.
    hangUp(i) {
      this.calls[i].disconnect();
    },
    tokenWillExpire() {
      const d = this.device();
      d.emit("tokenWillExpire", d);
    },
    summary() {
      const d = this.device();
      return {
        devices: this.devices.length,
        state: d ? d.state : null,
        destroyed: d ? d.destroyed : null,
        token: d ? d.token : null,
        options: d ? d.options : null,
        updates: this.updates,
      };
    },
  };

  class Device extends Emitter {
    constructor(token, options) {
      super();
      this.token = token;
      this.options = options || {};
      this.state = "unregistered";
      this.destroyed = false;
      stub.devices.push(this);
      stub.tokens.push(token);
    }
    setState(state) {
      this.state = state;
      this.emit(state);
    }
    async register() {
      this.setState("registering");
      await Promise.resolve();
      this.setState("registered");
    }
    async unregister() {
      this.setState("unregistered");
    }
    updateToken(token) {
      this.token = token;
      stub.tokens.push(token);
      stub.updates += 1;
    }
    destroy() {
      this.destroyed = true;
      this.state = "destroyed";
      this.emit("destroyed");
    }
  }
  Device.State = {
    Destroyed: "destroyed",
    Unregistered: "unregistered",
    Registering: "registering",
    Registered: "registered",
  };

  window.voiceStub = stub;
  window.Twilio = { Device, Call };
})();
