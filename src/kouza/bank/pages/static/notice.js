// The link in a notice may carry the reference in its fragment (#NM-...): the fragment never
// reaches the server or its logs, and this fills the form with it. The holder still presses
// the button; without this script the reference is typed.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.getElementById("f-reference");
  var reference = decodeURIComponent(window.location.hash.replace(/^#/, ""));
  if (field && !field.value && /^NM-[A-Z0-9]{10}$/i.test(reference)) {
    field.value = reference.toUpperCase();
  }
});
