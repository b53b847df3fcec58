// Loaded before Redoc on /api/v1/docs. Redoc's menu hard-codes an image from cdn.redoc.ly; this
// page loads nothing from outside (it must work offline, tell no third party who reads the docs,
// and pass its Content-Security-Policy), so that image is given an empty data: URL instead, which
// fails to decode, and Redoc then leaves it out.
"use strict";
(function () {
  const outside = /^https?:\/\//i;
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && name === "src" && outside.test(String(value))) {
      return setAttribute.call(this, name, "data:,");
    }
    return setAttribute.call(this, name, value);
  };
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    get() { return src.get.call(this); },
    set(value) { src.set.call(this, outside.test(String(value)) ? "data:," : value); },
    configurable: true,
  });
})();
