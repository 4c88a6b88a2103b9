# Tutorial 13 ("Custom Callbacks"), part 1 of the Russian edition (Часть 1: Базовый Callback): the tutorial's code, unchanged.
# Lines that are not from the tutorial are marked "# added: ...".
# With no OPENAI_API_KEY set, it runs against the bundled offline model server.
from rlm_toolkit.testing import offline_if_no_key; offline_if_no_key()  # added: offline when no key

# --- 1.1 Callback для логирования ---
from rlm_toolkit import RLM
from rlm_toolkit.callbacks import BaseCallback

class SimpleLogger(BaseCallback):
    def on_llm_start(self, prompt, **kwargs):
        print(f"📤 Отправка промпта ({len(prompt)} символов)")
    
    def on_llm_end(self, response, **kwargs):
        print(f"📥 Получено ({response.usage.total_tokens} токенов)")
    
    def on_error(self, error, **kwargs):
        print(f"❌ Ошибка: {error}")

rlm = RLM.from_openai("gpt-4o", callbacks=[SimpleLogger()])
result = rlm.run("Привет!")
