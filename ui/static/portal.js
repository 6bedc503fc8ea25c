// Small progressive enhancements; every page works without this file.
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  if (status === 403 || status === 404 || status >= 500) {
    const msg = status === 403 ? "You are not allowed to do that." : status === 404 ? "Not found." : "Something went wrong; try again.";
    window.alert(msg);
  }
});
