// Says that a verification is running while the form's request is under way.
"use strict";

(function () {
  const form = document.getElementById("verify-form");
  if (!form) return;
  form.addEventListener("submit", () => {
    const button = document.getElementById("verify-button");
    const progress = document.getElementById("verify-progress");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    progress.textContent = "Verifying every record, chain, signature and checkpoint…";
  });
})();
