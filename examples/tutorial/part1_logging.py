# Tutorial 13 ("Custom Callbacks"), part 1 (basic callback): the tutorial's code, unchanged.
# Lines that are not from the tutorial are marked "# added: ...".
# With no OPENAI_API_KEY set, it runs against the bundled offline model server.
from rlm_toolkit.testing import offline_if_no_key; offline_if_no_key()  # added: offline when no key

# --- 1.1 Logging Callback ---
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
