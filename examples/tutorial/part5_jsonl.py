# Tutorial 13 ("Custom Callbacks"), part 5 (JSONL file logger): the tutorial's code, unchanged.
# Lines that are not from the tutorial are marked "# added: ...".
# With no OPENAI_API_KEY set, it runs against the bundled offline model server.
from rlm_toolkit.testing import offline_if_no_key; offline_if_no_key()  # added: offline when no key
from rlm_toolkit import RLM  # added: imported in part 1 of the tutorial

# --- 5.1 JSONL Log ---
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

# added: exercise the logger (the tutorial builds rlm but never runs it).
rlm.run("Hello!")  # added: exercise the logger
logger.close()  # added: exercise the logger
