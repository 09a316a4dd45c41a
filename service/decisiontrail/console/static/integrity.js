// A verification runs in the background: this shows its progress and reloads the page with
// the result when it is done. (Without JavaScript the page refreshes itself instead.)
"use strict";

(function () {
  const form = document.getElementById("verify-form");
  if (form) {
    form.addEventListener("submit", () => {
      const button = document.getElementById("verify-button");
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      document.getElementById("verify-progress").textContent = "Starting the verification…";
    });
  }
  const running = document.getElementById("verify-running");
  if (!running) return;
  const meter = document.getElementById("verify-meter");
  const count = document.getElementById("verify-count");

  async function poll() {
    const response = await fetch("/console/integrity/progress", { credentials: "same-origin" });
    if (!response.ok) return;
    const state = await response.json();
    if (!state.running) {
      window.location.reload();
      return;
    }
    meter.max = state.total;
    meter.value = state.checked;
    count.textContent = state.checked + " of " + state.total + " records checked";
    setTimeout(poll, 500);
  }

  setTimeout(poll, 300);
})();
