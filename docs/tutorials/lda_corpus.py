"""Tutorial: LDA on your own corpus, with topic coherence and document completion.

The corpus is made of 48 short sentences written for this script on four themes
(cooking, astronomy, football, gardening), turned into counts by scikit-learn's
CountVectorizer and into an elbolab Corpus by ``Corpus.from_sklearn``. LDA is fitted by
CAVI on 40 documents; 4 more, made of sentences never seen in training, are scored by
document completion: each one's topic proportions are inferred from half of its words and
the other half is predicted. Coherence scores each topic's top words by how often they
share a document.
"""

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from elbolab.data import Corpus
from elbolab.diagnostics import topic_coherence
from elbolab.models import LDA

THEMES = {
    "cooking": [
        "Simmer the tomato sauce with garlic and onion before adding the pasta.",
        "Bake the bread in a hot oven until the crust turns golden.",
        "Whisk the eggs with butter and sugar to make a light cake batter.",
        "Season the soup with salt, pepper and fresh garlic.",
        "Fry the onion in butter, then add the rice and stir the pan.",
        "Knead the dough, let the bread rise, then bake it in the oven.",
        "The pasta sauce needs tomato, garlic, olive oil and a pinch of salt.",
        "Roast the chicken in the oven with butter, garlic and pepper.",
        "Stir the sugar into the melted butter and pour the batter into the cake pan.",
        "A good soup starts with onion, garlic and slow simmering in the pan.",
        "Slice the bread, spread butter, and toast it under the oven grill.",
        "Cook the rice slowly, season with salt and serve with the chicken.",
    ],
    "astronomy": [
        "The telescope revealed a faint galaxy beyond the bright star cluster.",
        "Astronomers measured the orbit of the planet around its distant star.",
        "The moon passed in front of the sun during the total eclipse.",
        "A comet with a long tail crossed the night sky near the planet Mars.",
        "The galaxy contains billions of stars and clouds of cosmic dust.",
        "Through the telescope the rings of the planet Saturn were clear.",
        "The orbit of the moon around the earth takes about a month.",
        "Light from a distant galaxy shows how the universe expands.",
        "The star exploded as a supernova, brighter than its whole galaxy.",
        "Mars is a red planet with a thin atmosphere and two small moons.",
        "The space telescope photographed a nebula where new stars form.",
        "An eclipse of the sun happens when the moon blocks its light.",
    ],
    "football": [
        "The striker scored a late goal and the team won the match.",
        "The goalkeeper saved a penalty in the final minute of the game.",
        "Fans cheered in the stadium as the team lifted the league trophy.",
        "The coach changed the team formation at half time.",
        "A defender cleared the ball off the line to keep the match level.",
        "The referee showed a red card and awarded a penalty to the visitors.",
        "The team trained hard before the cup final in the national stadium.",
        "The striker passed the ball and the midfielder scored the winning goal.",
        "After the match the coach praised the goalkeeper and the defence.",
        "The league season ends with a derby game between the two top teams.",
        "The referee stopped the game after a foul on the striker.",
        "The fans sang in the stadium until the final whistle of the match.",
    ],
    "gardening": [
        "Plant the tulip bulbs in autumn so the flowers bloom in spring.",
        "Water the tomato seedlings every morning and keep the soil moist.",
        "Prune the roses in late winter to encourage new growth.",
        "Compost adds nutrients to the garden soil and helps roots grow.",
        "The gardener sowed carrot and lettuce seeds in neat rows.",
        "Mulch around the shrubs keeps weeds down and the soil moist.",
        "The roses need sun, rich soil and regular watering in summer.",
        "Dig the bed, mix in compost, then plant the seedlings.",
        "Weeds compete with the vegetables for water and nutrients in the soil.",
        "In spring the garden fills with flowers, bees and fresh green leaves.",
        "Sow the seeds thinly and water the rows gently after planting.",
        "Prune dead branches from the shrubs and add them to the compost heap.",
    ],
}
# A document is three sentences of one theme. The last three sentences of each theme
# are kept apart: the held-out documents are made of them only, so no held-out sentence
# is ever seen in training.
rng = np.random.default_rng(0)
train_texts, test_texts, labels = [], [], []
for t, sentences in enumerate(THEMES.values()):
    seen, unseen = sentences[:9], sentences[9:]
    for _ in range(10):
        train_texts.append(" ".join(rng.choice(seen, 3, replace=False)))
        labels.append(t)
    test_texts.append(" ".join(unseen))
labels = np.array(labels)

vectorizer = CountVectorizer(stop_words="english")
X = vectorizer.fit_transform(train_texts + test_texts)  # (44, V) sparse counts
corpus = Corpus.from_sklearn(X, vectorizer)
n_train = len(train_texts)
train = corpus.subset(np.arange(n_train))
test = corpus.subset(np.arange(n_train, corpus.n_docs))
observed, heldout = test.completion_split(observed_fraction=0.5, seed=0)
print(
    f"corpus: {corpus.n_docs} documents ({n_train} for training), {corpus.n_words} words, "
    f"{corpus.n_tokens} tokens"
)

K = len(THEMES)
lda = LDA(n_topics=K, alpha=0.1, eta=0.1, max_iter=500, tol=1e-8, n_restarts=8, seed=0)
lda.fit(train)
per_token = lda.elbo_ / train.n_tokens
print(f"ELBO of the best of 8 restarts: {lda.elbo_:.2f} nats ({per_token:.4f} per token)")

top = np.argsort(-lda.components_, axis=1)[:, :6]
umass = topic_coherence(lda.components_, train, measure="umass", top_n=6)
npmi = topic_coherence(lda.components_, train, measure="npmi", top_n=6)
for k in range(K):
    words = " ".join(corpus.vocab[w] for w in top[k])
    print(f"topic {k}: {words:<48} UMass {umass.per_topic[k]:6.2f}  NPMI {npmi.per_topic[k]:5.2f}")

# Yardstick for coherence: the same number of words drawn at random from the vocabulary.
in_train = np.flatnonzero(np.asarray(train.counts.sum(axis=0)).ravel() > 0)
random_ids = np.stack([rng.choice(in_train, 6, replace=False) for _ in range(200)])
random_npmi = topic_coherence(random_ids, train, measure="npmi")
print(f"mean NPMI: topics {npmi.mean:.3f}, random word sets {random_npmi.mean:.3f}")

# Which topic dominates each training document, against the theme it was written for.
theta = lda.transform(train)
dominant = theta.argmax(axis=1)
matched = sum(np.bincount(dominant[labels == t], minlength=K).max() for t in range(K))
print(f"documents whose dominant topic is their theme's majority topic: {matched} of {n_train}")

# Document completion, against a unigram model: every word at its smoothed training
# frequency (the posterior mean of one topic under the same eta), whatever the document.
ppl = lda.completion_perplexity(observed, heldout)
freq = np.asarray(train.counts.sum(axis=0)).ravel() + 0.1
held = np.asarray(heldout.counts.sum(axis=0)).ravel()
unigram = float(np.exp(-(held * np.log(freq / freq.sum())).sum() / held.sum()))
print(
    f"completion perplexity on {ppl['n_tokens']} held-out tokens: {K} topics "
    f"{ppl['perplexity']:.1f}, unigram {unigram:.1f}"
)

# Fail loudly on nonsense: the topics must be more coherent than random words, follow
# the themes, and predict held-out words better than the unigram model.
assert np.all(np.isfinite(umass.per_topic)) and np.all(np.isfinite(npmi.per_topic))
assert npmi.mean > random_npmi.mean + 0.1, (npmi.mean, random_npmi.mean)
assert len(set(dominant)) == K, dominant
assert matched >= 0.8 * n_train, matched
assert ppl["n_tokens"] == held.sum(), (ppl["n_tokens"], held.sum())
assert ppl["perplexity"] < unigram, (ppl["perplexity"], unigram)
