// A field with a maximum length says when it is full: the browser stops typing there and cuts
// pasted text without a word. The hint under the field (templates/form_fields.html) carries the
// message for a full field in the page's language.
(function () {
  "use strict";

  function update(hint) {
    var field = document.getElementById(hint.dataset.limitFor);
    if (!field || !field.maxLength || field.maxLength < 0) {
      return;
    }
    if (!hint.dataset.normal) {
      hint.dataset.normal = hint.textContent;
    }
    var full = field.value.length >= field.maxLength;
    hint.textContent = full ? hint.dataset.full : hint.dataset.normal;
    hint.classList.toggle("error", full);
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (!target || !target.id) {
      return;
    }
    document.querySelectorAll('.field-limit[data-limit-for="' + target.id + '"]').forEach(update);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".field-limit").forEach(update);
  });
})();
