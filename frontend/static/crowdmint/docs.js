// Starts Redoc on /api/v1/docs from the container's data attributes (no inline script: CSP).
"use strict";
(function () {
  const container = document.getElementById("redoc-container");
  const options = JSON.parse(container.dataset.settings || "{}");
  window.Redoc.init(container.dataset.schemaUrl, options, container);
})();
