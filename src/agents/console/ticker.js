// The agent console's clock: a dedicated worker posts "tick" at the interval the page sends.
// Browsers throttle a hidden tab's own timers hard (to once a minute); a worker's are not, so
// the console keeps its heartbeat while the agent works in another tab.
"use strict";
let timer = null;
self.onmessage = (event) => {
  const every = Number(event.data);
  if (timer !== null) clearInterval(timer);
  timer = setInterval(() => self.postMessage("tick"), every > 0 ? every : 1000);
};
