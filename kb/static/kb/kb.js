// Knowledge-base helpers of the ticket page: a reply script or a suggested article
// fills the reply box. Delegated, so panels loaded later by htmx work too.
(function () {
  function replyBox() {
    return document.querySelector("form.reply textarea[name=body]");
  }
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-kb-script]");
    if (!select) return;
    var option = select.selectedOptions[0];
    var box = replyBox();
    if (box && option && option.dataset.text) {
      box.value = option.dataset.text;
      box.focus();
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-kb-insert]");
    if (!button) return;
    var box = replyBox();
    if (!box) return;
    box.value = box.value ? box.value + "\n" + button.dataset.kbInsert : button.dataset.kbInsert;
    box.focus();
  });
})();
