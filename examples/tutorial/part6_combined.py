# Tutorial 13 ("Custom Callbacks"), part 6 (combining callbacks), with the parts it builds on: the tutorial's code, unchanged.
# Lines that are not from the tutorial are marked "# added: ...".
# With no OPENAI_API_KEY set, it runs against the bundled offline model server.
from rlm_toolkit.testing import offline_if_no_key; offline_if_no_key()  # added: offline when no key

# --- Part 1: 1.1 Logging Callback (SimpleLogger) ---
from rlm_toolkit import RLM
from rlm_toolkit.callbacks import BaseCallback

class SimpleLogger(BaseCallback):
    def on_llm_start(self, prompt, **kwargs):
        print(f"📤 Sending prompt ({len(prompt)} chars)")
    
    def on_llm_end(self, response, **kwargs):
        print(f"📥 Received ({response.usage.total_tokens} tokens)")
    
    def on_error(self, error, **kwargs):
        print(f"❌ Error: {error}")

rlm = RLM.from_openai("gpt-4o", callbacks=[SimpleLogger()])
result = rlm.run("Hello!")

# --- Part 2: 2.1 Full Metrics Callback (MetricsCollector) ---
from rlm_toolkit.callbacks import BaseCallback
import time
from collections import defaultdict

class MetricsCollector(BaseCallback):
    def __init__(self):
        self.calls = 0
        self.tokens = 0
        self.errors = 0
        self.latencies = []
        self.start_time = None
        self.by_model = defaultdict(int)
    
    def on_llm_start(self, prompt, **kwargs):
        self.start_time = time.time()
        self.calls += 1
    
    def on_llm_end(self, response, **kwargs):
        latency = time.time() - self.start_time
        self.latencies.append(latency)
        self.tokens += response.usage.total_tokens
        self.by_model[kwargs.get("model", "unknown")] += 1
    
    def on_error(self, error, **kwargs):
        self.errors += 1
    
    def summary(self):
        avg_latency = sum(self.latencies) / len(self.latencies) if self.latencies else 0
        return {
            "total_calls": self.calls,
            "total_tokens": self.tokens,
            "errors": self.errors,
            "avg_latency_ms": avg_latency * 1000,
            "by_model": dict(self.by_model)
        }

# Use it
metrics = MetricsCollector()
rlm = RLM.from_openai("gpt-4o", callbacks=[metrics])

for i in range(10):
    rlm.run(f"Question {i}")

print(metrics.summary())

# --- Part 5: 5.1 JSONL Log (JSONLLogger) ---
import json
from datetime import datetime
from rlm_toolkit.callbacks import BaseCallback

class JSONLLogger(BaseCallback):
    def __init__(self, path="rlm_logs.jsonl"):
        self.path = path
        self.file = open(path, "a")
    
    def _log(self, event_type, data):
        entry = {
            "timestamp": datetime.now().isoformat(),
            "event": event_type,
            **data
        }
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
    
    def on_llm_start(self, prompt, **kwargs):
        self._log("llm_start", {"prompt": prompt[:200]})
    
    def on_llm_end(self, response, **kwargs):
        self._log("llm_end", {
            "tokens": response.usage.total_tokens,
            "response": response.content[:200]
        })
    
    def on_tool_start(self, tool_name, tool_input, **kwargs):
        self._log("tool_start", {"tool": tool_name, "input": str(tool_input)[:100]})
    
    def on_error(self, error, **kwargs):
        self._log("error", {"error": str(error)})
    
    def close(self):
        self.file.close()

logger = JSONLLogger("session.jsonl")
rlm = RLM.from_openai("gpt-4o", callbacks=[logger])

# --- Part 6: Combining Callbacks ---
from rlm_toolkit.callbacks import ConsoleCallback

callbacks = [
    SimpleLogger(),
    MetricsCollector(),
    JSONLLogger("full_log.jsonl")
]

rlm = RLM.from_openai("gpt-4o", callbacks=callbacks)

# added: exercise the combination (the tutorial builds rlm but never runs it).
rlm.run("Hello!")  # added: exercise the combination
print(callbacks[1].summary())  # added: exercise the combination
callbacks[2].close()  # added: exercise the combination
