// The console's one script: a form answered with 400 or 422 (a refusal re-rendered with its
// message) is swapped in like a success, so HTMX forms show the message instead of nothing.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 400 || status === 404 || status === 422) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
