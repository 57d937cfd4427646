// Export of the selection (GET /api/export): the rows are counted first
// (check=true), so a selection past the limit says so instead of failing a
// download; then the file is fetched by a link. Each attempt is kept in
// `fgm.exports` (what the browser test reads).
(function () {
  "use strict";
  const { el, getJSON } = window.fgmUtil;

  window.fgmExport = async function (fgm, range, format) {
    const url = "/api/export?containers=" + fgm.selected.join(",") + "&metrics=" + fgm.metricsSelected.join(",") +
      "&from=" + range.from + "&to=" + range.to + "&format=" + format;
    const msg = document.getElementById("export-message");
    msg.className = "export-message";
    msg.textContent = "Counting rows…";
    try {
      const check = await getJSON(url + "&check=true");
      msg.textContent = "Downloading " + check.rows + " rows as " + check.file_name;
      fgm.exports.push({ format, url, rows: check.rows, file: check.file_name });
      const a = el("a", { href: url, download: check.file_name });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      msg.className = "export-message bad";
      msg.textContent = e.message;
      fgm.exports.push({ format, url, error: e.message });
    }
  };
})();
