// Keyboard shortcuts and the edit mode of the review page. No framework, no build step: without this
// script the buttons still work (each submits its own decision).
(function () {
  const form = document.getElementById("decision-form");
  if (!form) return;
  let editing = false;

  function decide(kind) {
    form.requestSubmit(form.querySelector('button[name="decision"][value="' + kind + '"]'));
  }

  function startEditing() {
    editing = true;
    form.querySelectorAll("textarea.edit").forEach(function (area) { area.hidden = false; });
    form.querySelectorAll(".answer .markdown").forEach(function (div) { div.hidden = true; });
    document.getElementById("save-edit").hidden = false;
    form.querySelector("textarea.edit").focus();
  }
  document.getElementById("edit").addEventListener("click", startEditing);

  const keys = { k: "keep", s: "swap", r: "reject_both", n: "skip" };
  document.addEventListener("keydown", function (event) {
    if (editing && event.key === "Enter" && (event.ctrlKey || event.metaKey)) { decide("edit"); return; }
    const typing = event.target.matches("textarea, input");
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === "e") { event.preventDefault(); startEditing(); return; }
    if (keys[key]) { event.preventDefault(); decide(keys[key]); }
  });
})();
