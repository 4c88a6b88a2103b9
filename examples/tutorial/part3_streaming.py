# Tutorial 13 ("Custom Callbacks"), part 3 (streaming UI): the tutorial's code, unchanged.
# Lines that are not from the tutorial are marked "# added: ...".
# With no OPENAI_API_KEY set, it runs against the bundled offline model server.
from rlm_toolkit.testing import offline_if_no_key; offline_if_no_key()  # added: offline when no key
from rlm_toolkit import RLM  # added: imported in part 1 of the tutorial

# --- 3.1 Token-by-Token Output ---
from rlm_toolkit.callbacks import StreamingCallback

def print_token(token):
    print(token, end="", flush=True)

streaming = StreamingCallback(on_token=print_token)
rlm = RLM.from_openai("gpt-4o", callbacks=[streaming])

# Tokens appear one by one
result = rlm.run("Write a haiku about coding")
print()  # Newline at end

# --- 3.2 Rich Console UI ---
from rich.live import Live
from rich.markdown import Markdown

class RichStreamCallback(StreamingCallback):
    def __init__(self):
        self.buffer = ""
        self.live = None
    
    def on_llm_start(self, **kwargs):
        self.buffer = ""
        self.live = Live(Markdown(""), refresh_per_second=10)
        self.live.start()
    
    def on_token(self, token):
        self.buffer += token
        self.live.update(Markdown(self.buffer))
    
    def on_llm_end(self, **kwargs):
        self.live.stop()

# added: the tutorial defines RichStreamCallback but never runs it; run it once.
rlm = RLM.from_openai("gpt-4o", callbacks=[RichStreamCallback()])  # added: exercise 3.2
result = rlm.run("Write a haiku about coding")  # added: exercise 3.2
