// Where Chromium and Firefox differ, decided by feature checks (never by the user agent), so one
// set of sources and one manifest serve both: Chromium shows the panel in its side panel
// (chrome.sidePanel, manifest "side_panel"), Firefox in its sidebar (browser.sidebarAction,
// manifest "sidebar_action"). Everything else the extension uses is the same `chrome.*` API in both.

/** The Firefox sidebar API, or null in Chromium. */
function sidebarAction() {
  return globalThis.browser?.sidebarAction ?? null;
}

/**
 * Make the toolbar button (and its _execute_action shortcut) open the panel. Call it at the top
 * level of the background script, synchronously: Firefox wakes a suspended event page only for
 * listeners registered there.
 */
export function openPanelOnActionClick() {
  const sidebar = sidebarAction();
  if (sidebar) {
    // toggle() must run inside the click's own handler (a user action), so no await before it.
    chrome.action.onClicked.addListener(() => {
      sidebar.toggle().catch((err) => console.warn("inflow: sidebar:", err));
    });
    return;
  }
  if (chrome.sidePanel?.setPanelBehavior) {
    chrome.sidePanel
      .setPanelBehavior({ openPanelOnActionClick: true })
      .catch((err) => console.warn("inflow: side panel behaviour:", err));
  }
}
