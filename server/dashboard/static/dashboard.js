// gitflags dashboard: filtering rows as you type, and ages in the footer. The pages work
// without it (the filter form submits); no inline script anywhere (CSP: script-src 'self').
"use strict";

function setUpFilter() {
  const table = document.getElementById("flags");
  const form = document.getElementById("filters");
  if (!table || !form) return;
  const text = document.getElementById("q");
  const tag = document.getElementById("tag");
  const owner = document.getElementById("owner");
  const count = document.getElementById("count");
  const rows = Array.from(table.tBodies[0].rows, (row) => ({
    row,
    words: row.cells[0].textContent.toLowerCase() + " " + row.cells[1].textContent.toLowerCase()
      + " " + row.cells[2].textContent.toLowerCase(),
    owner: row.cells[1].textContent,
    tags: Array.from(row.cells[2].querySelectorAll(".tag"), (span) => span.textContent),
  }));
  // A paged overview holds one page of the matching flags: typing filters that page only,
  // and says so; the form (Enter) searches every flag. Its tag and owner lists submit.
  const paged = count !== null && count.hasAttribute("data-paged");
  const served = count ? count.textContent : "";
  const total = count ? Number(count.dataset.total).toLocaleString("en-US") : "";
  function apply() {
    const wanted = text.value.trim().toLowerCase();
    let shown = 0;
    for (const item of rows) {
      const visible = (!wanted || item.words.includes(wanted))
        && (!tag.value || item.tags.includes(tag.value))
        && (!owner.value || item.owner === owner.value);
      item.row.classList.toggle("hidden", !visible);
      if (visible) shown += 1;
    }
    if (!count) return;
    if (!paged) count.textContent = shown + " of " + total + " flags";
    else if (wanted === text.defaultValue.trim().toLowerCase()) count.textContent = served;
    else count.textContent = shown + " of the " + rows.length
      + " flags on this page match; press Enter to search every page";
  }
  text.addEventListener("input", apply);
  for (const select of [tag, owner]) {
    if (!select.classList.contains("submit-on-change")) select.addEventListener("change", apply);
  }
}

function setUpSubmitOnChange() {
  for (const select of document.querySelectorAll("select.submit-on-change")) {
    select.addEventListener("change", () => select.form.submit());
  }
}

function age(seconds) {
  const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [name, size] of units) {
    const n = Math.floor(seconds / size);
    if (n >= 1) return n + " " + name + (n === 1 ? "" : "s") + " ago";
  }
  return "just now";
}

function setUpAges() {
  for (const time of document.querySelectorAll("time.age")) {
    const then = Date.parse(time.getAttribute("datetime"));
    if (!Number.isNaN(then)) {
      time.title = time.getAttribute("datetime");
      time.textContent = age(Math.max(0, (Date.now() - then) / 1000));
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpFilter();
  setUpSubmitOnChange();
  setUpAges();
});
