// The run's numbers at a glance: progress and phase, losses, throughput, where and since when.

import type { ComponentChildren } from "preact";
import type { Run } from "../../api/types";
import { compact, dateTime, duration, num, remaining, totalSeconds } from "../../lib/format";
import { Phase } from "../../components/Phase";
import { Progress } from "../../components/Progress";

export function Stats({ run, now, active }: { run: Run; now: number; active: boolean }) {
  return (
    <div class="stats card">
      <Stat label="Progress">
        <Progress step={run.step} max={run.max_steps} eta={remaining(run.eta_until, run.eta_seconds, now)} active={active} />
        <Phase run={run} now={now} />
      </Stat>
      <Stat label="Loss">{num(run.loss, 4)}</Stat>
      <Stat label="Eval loss">{num(run.eval_loss, 4)}</Stat>
      <Stat label="Perplexity">{num(run.perplexity, 4)}</Stat>
      <Stat label="Tokens/s">{compact(run.tokens_per_second)}</Stat>
      <Stat label="Tokens seen">{compact(run.tokens_seen)}</Stat>
      <Stat label="Method">{run.method === "lora" ? "LoRA" : "full"}</Stat>
      <Stat label="Model">{run.model}</Stat>
      <Stat label="Attempt">{run.attempt}</Stat>
      <Stat label="Worker">{run.worker ?? "–"}</Stat>
      <Stat label="Started">{dateTime(run.first_started_at ?? run.started_at)}</Stat>
      <Stat label="Duration">{duration(totalSeconds(run, now))}</Stat>
    </div>
  );
}

function Stat({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="stat">
      <div class="stat-label">{label}</div>
      <div class="stat-value">{children}</div>
    </div>
  );
}
