/*
 * IDC Review keys: keyboard shortcuts, a remembered reviewer name and a lease heartbeat for the
 * IDC Review panel (a Python panel), as a small FiftyOne JS component.
 *
 * Python panels cannot listen to the keyboard; this component, drawn inside the panel, does. It uses
 * only what the running App provides on `window` (React, `__fop__` the plugin registry, `__foo__`
 * the operators, `__fosp__` the spaces), as FiftyOne's own plugin build maps them, so this file is
 * the source and the bundle at once: nothing to build, no Node for users.
 *
 * The panel draws it with `types.View(component="IDCReviewKeys", ...)` and these view options:
 *   actions      {accept|save_edit|flag|skip|undo|next: the panel method's URI}
 *   params       what each action carries (the pair id and the version the reviewer saw)
 *   reviewer     the reviewer's name in the panel (remembered in this browser's localStorage)
 *   on_reviewer  the method that takes a remembered name back into a panel that has none
 *   heartbeat, heartbeat_s   the method that renews the reviewer's lease, and every how many seconds
 *   hint         the line of text to show
 * Shortcuts: Alt+A accept, Alt+E save edit, Alt+F flag, Alt+S skip, Alt+Z undo, Alt+N next (Alt, so
 * that typing in the caption box and the App's own single-key shortcuts are left alone).
 */
(function () {
  "use strict";
  var React = window.React;
  var plugins = window.__fop__;
  var operators = window.__foo__;
  var spaces = window.__fosp__;
  if (!React || !plugins || !operators || !spaces) {
    console.warn("idc-review-keys: the FiftyOne App's globals are missing; keyboard shortcuts are off");
    return;
  }
  var STORAGE_KEY = "idc-review.reviewer";
  var KEYS = { KeyA: "accept", KeyE: "save_edit", KeyF: "flag", KeyS: "skip", KeyZ: "undo", KeyN: "next" };

  function IDCReviewKeys(props) {
    var view = (props.schema && props.schema.view) || {};
    var panelId = spaces.usePanelId();
    var trigger = operators.usePanelEvent();
    var latest = React.useRef(view);
    var restored = React.useRef(false);
    latest.current = view;

    React.useEffect(
      function () {
        var saved = null;
        try {
          if (view.reviewer) {
            window.localStorage.setItem(STORAGE_KEY, view.reviewer);
            restored.current = true;
            return;
          }
          if (restored.current) return; // once per panel: a name the reviewer clears stays cleared
          restored.current = true;
          saved = window.localStorage.getItem(STORAGE_KEY);
        } catch (error) {
          return; // storage refused (private mode): the name is typed again
        }
        if (saved && view.on_reviewer) {
          trigger(panelId, { operator: view.on_reviewer, params: { value: saved } });
        }
      },
      [view.reviewer, panelId]
    );

    React.useEffect(
      function () {
        function onKey(event) {
          if (!event.altKey || event.ctrlKey || event.metaKey) return;
          var action = KEYS[event.code];
          var current = latest.current;
          var operator = action && current.actions && current.actions[action];
          if (!operator) return;
          event.preventDefault();
          event.stopPropagation();
          trigger(panelId, { operator: operator, params: current.params || {} });
        }
        document.addEventListener("keydown", onKey, true);
        return function () {
          document.removeEventListener("keydown", onKey, true);
        };
      },
      [panelId, trigger]
    );

    React.useEffect(
      function () {
        if (!view.heartbeat || !view.heartbeat_s) return undefined;
        var timer = window.setInterval(function () {
          var current = latest.current;
          trigger(panelId, { operator: current.heartbeat, params: current.params || {} });
        }, view.heartbeat_s * 1000);
        return function () {
          window.clearInterval(timer);
        };
      },
      [panelId, view.heartbeat, view.heartbeat_s]
    );

    return React.createElement(
      "div",
      { "data-cy": "idc-review-keys", style: { fontSize: "0.8rem", opacity: 0.7 } },
      view.hint || ""
    );
  }

  plugins.registerComponent({
    name: "IDCReviewKeys",
    label: "IDC review keys",
    component: IDCReviewKeys,
    type: plugins.PluginComponentType.Component,
    activator: function () {
      return true;
    },
  });
})();
