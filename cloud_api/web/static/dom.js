/* DOM building shared by the FieldLine pages that draw their views from data (/fleet, /training).
 *
 * FieldLineDom.el(tag, attrs, ...children): an element with attributes ("class" sets className, "on<event>"
 * adds a listener, null/undefined values are left out) and children (nodes, or anything else as text; nested
 * arrays are flattened, null children skipped).
 */
(function () {
  "use strict";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value != null) node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child != null) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  window.FieldLineDom = { el };
})();
