// stagewatch console: the only script. Pages work without it; it keeps the live feed live.
"use strict";

(function liveFeed() {
  const feed = document.querySelector("ol[data-live-feed]");
  if (!feed) return;
  const status = document.getElementById("live-status");
  let after = feed.dataset.after || "0";
  const filter = feed.dataset.filter || "";
  const say = (text) => { if (status) status.textContent = text; };

  async function poll() {
    for (;;) {
      say("Live: new events appear at the top.");
      try {
        const response = await fetch(`/ui/events/live?after=${encodeURIComponent(after)}${filter}`, {
          credentials: "same-origin",
          headers: { Accept: "text/html" },
        });
        if (response.status === 401) {
          say("Signed out: reload the page to sign in again.");
          return;
        }
        if (!response.ok) throw new Error(`status ${response.status}`);
        const rows = await response.text();
        const next = response.headers.get("x-next-after");
        if (next) after = next;
        if (rows.trim()) {
          feed.querySelectorAll("li.fresh").forEach((li) => li.classList.remove("fresh"));
          feed.insertAdjacentHTML("afterbegin", rows);
          const empty = document.getElementById("feed-empty");
          if (empty) empty.remove();
        }
      } catch (error) {
        say("Connection lost; retrying…");
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
  }
  poll();
})();
