// Small progressive enhancements; every page works without this file.
// A refused or failed htmx request: its message goes into the page's error region (the
// server's own words from the error page it answered), nothing is swapped.
const FALLBACK = { 403: "You are not allowed to do that.", 404: "Not found." };
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  const region = document.getElementById("page-error");
  if (!region || !(xhr.status === 403 || xhr.status === 404 || xhr.status >= 500)) return;
  let text = FALLBACK[xhr.status] || "Something went wrong; try again.";
  const answer = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  const said = answer.querySelector("main [role=alert]:not(#page-error)");
  if (said && said.textContent.trim()) text = said.textContent.trim();
  region.querySelector("[data-error-text]").textContent = text;
  region.hidden = false;
  region.scrollIntoView({ block: "nearest" });
});
document.addEventListener("htmx:sendError", () => {
  const region = document.getElementById("page-error");
  if (!region) return;
  region.querySelector("[data-error-text]").textContent = "The server did not answer; check the connection and try again.";
  region.hidden = false;
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-dismiss]");
  const region = button && document.getElementById(button.dataset.dismiss);
  if (region) region.hidden = true;
});
// Browsers without ::details-content cannot show a closed details' list by CSS: open the
// navigation on wide screens for them (the summary is hidden there).
const navMenu = document.getElementById("nav-menu");
if (navMenu && !CSS.supports("selector(::details-content)")) {
  const wide = window.matchMedia("(min-width: 801px)");
  const follow = () => { navMenu.open = wide.matches; };
  follow();
  wide.addEventListener("change", follow);
}
// Copy buttons next to read-only fields (callback URLs, secrets shown once).
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy-from]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copyFrom);
  if (!field) return;
  field.select();
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});
// Behaviour the templates ask for with data- attributes: the Content-Security-Policy allows
// no inline handlers, and htmx runs with allowEval off.
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-submit-on-change]");
  if (field && field.form) field.form.requestSubmit();
});
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("button[data-toggles]");
  if (!toggle) return;
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  const target = document.getElementById(toggle.dataset.toggles);
  if (target) target.toggleAttribute("hidden", !open);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.closest("[data-enter-does-not-submit]")) {
    event.preventDefault();
  }
});
document.addEventListener("focusin", (event) => {
  const field = event.target.closest("[data-select-on-focus]");
  if (field) field.select();
});
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
// A colour picker and its hex box (data-hex names the box) follow each other; either alone
// works without JavaScript (portal/controllers/branding.py tells which one was changed).
document.addEventListener("input", (event) => {
  const picker = event.target.closest("input[type=color][data-hex]");
  if (picker) {
    const hex = document.getElementById(picker.dataset.hex);
    if (hex) {
      hex.value = picker.value;
      hex.dispatchEvent(new Event("change", { bubbles: true }));
    }
    return;
  }
  const box = event.target.closest("input.colour-input");
  const linked = box && document.querySelector(`input[type=color][data-hex="${box.id}"]`);
  if (linked && /^#[0-9a-fA-F]{6}$/.test(box.value)) linked.value = box.value.toLowerCase();
});
