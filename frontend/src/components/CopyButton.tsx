import { useState } from "preact/hooks";

/** Clipboard API needs a secure context; plain http on a LAN host falls back to execCommand. */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.style.position = "fixed";
  ta.style.opacity = "0";
  document.body.appendChild(ta);
  ta.select();
  document.execCommand("copy");
  ta.remove();
}

export function CopyButton({ text, label = "Copy" }: { text: string | (() => Promise<string>); label?: string }) {
  const [state, setState] = useState<"idle" | "done" | "error">("idle");
  const onClick = async () => {
    try {
      await copyText(typeof text === "string" ? text : await text());
      setState("done");
    } catch {
      setState("error");
    }
    setTimeout(() => setState("idle"), 1500);
  };
  return (
    <button type="button" class="btn btn-small" onClick={onClick} aria-live="polite">
      {state === "done" ? "Copied" : state === "error" ? "Copy failed" : label}
    </button>
  );
}
