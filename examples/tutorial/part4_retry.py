# Tutorial 13 ("Custom Callbacks"), part 4 (retry handler): the tutorial's code, unchanged.
# Lines that are not from the tutorial are marked "# added: ...".
# With no OPENAI_API_KEY set, it runs against the bundled offline model server.
from rlm_toolkit.testing import offline_if_no_key; offline_if_no_key()  # added: offline when no key
from rlm_toolkit import RLM  # added: imported in part 1 of the tutorial

# --- 4.1 Smart Retry Logic ---
import time
from rlm_toolkit.callbacks import BaseCallback

class RetryHandler(BaseCallback):
    def __init__(self, max_retries=3, backoff=2.0):
        self.max_retries = max_retries
        self.backoff = backoff
        self.retry_count = 0
    
    def on_retry(self, attempt, max_attempts, error, **kwargs):
        wait_time = self.backoff ** attempt
        print(f"⚠️ Retry {attempt}/{max_attempts} in {wait_time}s: {error}")
        time.sleep(wait_time)
        self.retry_count += 1
    
    def on_error(self, error, **kwargs):
        print(f"❌ Final error after {self.retry_count} retries: {error}")

rlm = RLM.from_openai("gpt-4o", callbacks=[RetryHandler()])

# added: exercise the handler (the tutorial builds rlm but never runs it).
result = rlm.run("Hello!")  # added: exercise the handler
print(f"Answer: {result.answer}")  # added: exercise the handler
