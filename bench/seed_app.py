"""The seed service, reproduced faithfully as the benchmark's reference.

Flask's built-in server, the slow (pure Python) ``BertTokenizer`` (called ``BertTokenizerLegacy``
since transformers 5 made ``BertTokenizer`` the Rust one), an fp32 model, one text per request, no
batching. Changes from the original, none of which touches its speed: the model comes from
``SEED_MODEL`` and the WordPiece vocabulary from ``SEED_VOCAB`` (there is no model hub here), and the
debugger is off (``debug=True``
exposes the Werkzeug console, which runs arbitrary code, and its reloader forks a second process).
"""

import os

import torch
from flask import Flask, jsonify, request
from transformers import BertForSequenceClassification
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as BertTokenizer

MODEL = os.environ["SEED_MODEL"]

app = Flask(__name__)
model = BertForSequenceClassification.from_pretrained(MODEL)
model.eval()
# from_pretrained("bert-base-uncased") read model_max_length (512) from the hub's tokenizer config
tokenizer = BertTokenizer(vocab_file=os.environ["SEED_VOCAB"], do_lower_case=True,
                          model_max_length=model.config.max_position_embeddings)


@app.route("/predict", methods=["POST"])
def predict():
    data = request.get_json()
    text = data["text"]
    inputs = tokenizer(text, return_tensors="pt", truncation=True, padding=True)
    with torch.no_grad():
        outputs = model(**inputs)
    predicted_class = torch.argmax(outputs.logits, dim=1).item()
    return jsonify({"predicted_class": predicted_class})


@app.route("/healthz")
def healthz():  # added for the benchmark's readiness check
    return jsonify({"status": "ok"})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("SEED_PORT", "5000")), debug=False)
