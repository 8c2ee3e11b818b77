"""Every real lesson through `vae-course grade` as a learner gets it: scan, guard, sandbox (where bwrap
works) and the judge, which first runs the course's solution once to record what correct answers
return (quick mode, as CI runs the lessons). The solution typed into the learner's copy gets full
marks from the judge, the untouched copy gets 0 on every test.
"""
from __future__ import annotations

import shutil

import nbformat
import pytest

import nb_helpers as h
from vae_core.grading.autograde import GradeOptions, grade_lesson
from vae_core.grading.course import Lesson

LESSONS = h.solution_lessons()


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS, ids=[ls.name for ls in LESSONS])
def test_the_judge_gives_the_solution_full_marks_and_the_stub_zero(tmp_path, monkeypatch, lesson):
    monkeypatch.setenv("VAE_COURSE_QUICK", "1")
    root = tmp_path / "course"
    shutil.copytree(lesson.solution_dir, root / "solutions" / lesson.name)
    shutil.copy2(h.REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    course_lesson = Lesson(lesson.name, root)
    answered = tmp_path / "answered" / lesson.filename
    answered.parent.mkdir()
    nbformat.write(h.answer_exercises(lesson.release, lesson.solution), answered)

    full = grade_lesson(course_lesson, answered, GradeOptions(timeout=300))
    assert full.status == "graded", full.message
    assert full.score == full.max > 0, [(e.grade_id, e.points, e.message) for e in full.exercises if not e.passed]
    stub = grade_lesson(course_lesson, lesson.release, GradeOptions(timeout=300))
    assert stub.status == "graded", stub.message
    assert [e.grade_id for e in stub.exercises if e.points > 0] == [], "the released stub must score 0 on every test"


# --- the exercises judged by reports: another correct answer keeps its points, a wrong one with the
# kernel's checks switched off gets none ------------------------------------------------------------

ALTERNATIVES = {  # correct answers written differently from the solution (other draws, other signs)
    "01": ("ex3_pca_fit", (
        "def pca_fit(X, k):\n"
        "    mean = X.mean(0)\n"
        "    evals, evecs = torch.linalg.eigh((X - mean).T @ (X - mean))   # ascending; signs arbitrary\n"
        "    return mean, -evecs.flip(-1)[:, :k]\n")),
    "02": ("ex2_kl_monte_carlo", (
        "def kl_monte_carlo(mu_q, logvar_q, mu_p, logvar_p, n_samples, generator=None):\n"
        "    sq, sp = (0.5 * logvar_q).exp().unsqueeze(-2), (0.5 * logvar_p).exp().unsqueeze(-2)\n"
        "    mq, mp = mu_q.unsqueeze(-2), mu_p.unsqueeze(-2)\n"
        "    eps = torch.randn(tuple(mu_q.shape[:-1]) + (n_samples, mu_q.shape[-1]), generator=generator, dtype=mu_q.dtype)\n"
        "    z = mq + sq * eps                                   # samples on dim -2 instead of dim 0\n"
        "    log_q = (-0.5 * ((z - mq) / sq) ** 2 - sq.log()).sum(-1)\n"
        "    log_p = (-0.5 * ((z - mp) / sp) ** 2 - sp.log()).sum(-1)\n"
        "    return (log_q - log_p).mean(-1)\n")),
    # judged by values and the reported gradients: the square root of the variance instead of exp(logvar / 2)
    "03": ("ex1_reparameterize", (
        "def reparameterize(mu, logvar, eps):\n"
        "    return torch.sqrt(torch.exp(logvar)) * eps + mu\n")),
    # judged by reports: log-sigmoids, standard deviations and reshape instead of softplus, log-variances and view
    "04": ("ex1_my_vae", (
        "class MyVAE(nn.Module):\n"
        "    def __init__(self, image_shape=(1, 28, 28), hidden=400, latent=20):\n"
        "        super().__init__()\n"
        "        self.image_shape, self.latent = tuple(image_shape), latent\n"
        "        n = int(np.prod(self.image_shape))\n"
        "        self.enc = nn.Linear(n, hidden)\n"
        "        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)\n"
        "        self.dec1, self.dec2 = nn.Linear(latent, hidden), nn.Linear(hidden, n)\n"
        "    def encode(self, x):\n"
        "        h = F.relu(self.enc(x.reshape(len(x), -1)))\n"
        "        return self.mu(h), self.logvar(h)\n"
        "    def reparameterize(self, mu, logvar, eps):\n"
        "        return torch.sqrt(torch.exp(logvar)) * eps + mu\n"
        "    def decode(self, z):\n"
        "        return self.dec2(F.relu(self.dec1(z))).reshape(len(z), *self.image_shape)\n"
        "    def neg_elbo(self, x, eps):\n"
        "        mu, logvar = self.encode(x)\n"
        "        l = self.decode(self.reparameterize(mu, logvar, eps))\n"
        "        recon = -(x * F.logsigmoid(l) + (1 - x) * F.logsigmoid(-l)).reshape(len(x), -1).sum(1)\n"
        "        sd = torch.exp(0.5 * logvar)\n"
        "        kl = (-torch.log(sd) + (sd ** 2 + mu ** 2) / 2 - 0.5).sum(1)\n"
        "        return recon.mean() + kl.mean(), recon, kl\n")),
    # judged by values, not reports: np.histogram's edges and digitize instead of floor((c - lo) / w) give the same bins
    "07": ("ex4_mig_score", (
        "def mig_score(codes, factors, n_bins=20):\n"
        "    import numpy as np\n"
        "    z = codes.double().numpy()\n"
        "    bins = np.zeros(z.shape, dtype=np.int64)\n"
        "    for j in range(z.shape[1]):\n"
        "        edges = np.histogram_bin_edges(z[:, j], bins=n_bins)\n"
        "        bins[:, j] = np.clip(np.digitize(z[:, j], edges[1:-1]), 0, n_bins - 1) if z[:, j].max() > z[:, j].min() else 0\n"
        "    b = torch.from_numpy(bins)\n"
        "    K = factors.shape[1]\n"
        "    mi = torch.tensor([[mutual_information(b[:, j], factors[:, k]) for k in range(K)] for j in range(b.shape[1])], dtype=torch.float64)\n"
        "    h = torch.tensor([mutual_information(factors[:, k], factors[:, k]) for k in range(K)], dtype=torch.float64)\n"
        "    s = mi.sort(dim=0, descending=True).values\n"
        "    gaps = (s[0] - s[1]) / h\n"
        "    return gaps.mean().item(), gaps\n")),
    # judged by values: autograd and F.cross_entropy instead of the hand-written gradient reach the same weights
    "08": ("ex3_fit_probe", (
        "def fit_probe(features, labels, n_classes, steps=200, lr=0.5):\n"
        "    x = features.double()\n"
        "    mean = x.mean(0)\n"
        "    std = ((x - mean) ** 2).mean(0).sqrt() + 1e-6\n"
        "    x = (x - mean) / std\n"
        "    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)\n"
        "    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)\n"
        "    opt = torch.optim.SGD([w, b], lr=lr)\n"
        "    for _ in range(steps):\n"
        "        opt.zero_grad()\n"
        "        F.cross_entropy(x @ w + b, labels.long()).backward()\n"
        "        opt.step()\n"
        "    return w.detach(), b.detach(), mean, std\n")),
    # judged by values and the reported gradients: torch.cdist and a gather instead of the expanded distance
    "09": ("ex1_quantize", (
        "def quantize(z_e, codebook):\n"
        "    b, d, h, w = z_e.shape\n"
        "    flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)\n"
        "    codes = torch.cdist(flat[None], codebook[None])[0].argmin(1).view(b, h, w)\n"
        "    q = torch.index_select(codebook, 0, codes.flatten()).view(b, h, w, d).permute(0, 3, 1, 2)\n"
        "    return q.detach() + z_e - z_e.detach(), codes\n")),
    # judged by values and the reported gradients: log-sigmoids and standard deviations instead of BCE and log-variances
    "10": ("ex1_hierarchical_elbo", (
        "def hierarchical_elbo(model, x, eps2, eps1):\n"
        "    h1 = model.bottom_up1(x.reshape(len(x), -1))\n"
        "    m2, lv2 = model.q_z2(model.bottom_up2(h1))\n"
        "    s2 = lv2.mul(0.5).exp()\n"
        "    t = model.top_down(m2 + s2 * eps2)\n"
        "    pm, plv = model.p_z1(t)\n"
        "    m1, lv1 = model.q_z1(torch.cat([h1, t], -1))\n"
        "    s1, ps = lv1.mul(0.5).exp(), plv.mul(0.5).exp()\n"
        "    l = model.decoder(m1 + s1 * eps1)\n"
        "    recon = -(x * F.logsigmoid(l) + (1 - x) * F.logsigmoid(-l)).sum((1, 2, 3))\n"
        "    kl_1 = (ps.log() - s1.log() + (s1 ** 2 + (m1 - pm) ** 2) / (2 * ps ** 2) - 0.5).sum(1)\n"
        "    kl_2 = (-s2.log() + (s2 ** 2 + m2 ** 2) / 2 - 0.5).sum(1)\n"
        "    return recon, kl_1, kl_2\n")),
    # judged by reported accuracies: another correct solver (the bias as a column of ones, unpenalised, float64)
    "11": ("ex4_linear_probe", (
        "def linear_probe(train_f, train_y, test_f, test_y, weight_decay):\n"
        "    c = int(max(train_y.max(), test_y.max())) + 1\n"
        "    X = torch.cat([train_f.double(), torch.ones(len(train_f), 1, dtype=torch.float64)], 1)\n"
        "    T = torch.cat([test_f.double(), torch.ones(len(test_f), 1, dtype=torch.float64)], 1)\n"
        "    theta = torch.zeros(X.shape[1], c, dtype=torch.float64, requires_grad=True)\n"
        "    mask = torch.ones(X.shape[1], 1, dtype=torch.float64)\n"
        "    mask[-1] = 0.0\n"
        "    opt = torch.optim.LBFGS([theta], max_iter=1000, tolerance_grad=1e-10, tolerance_change=1e-14, line_search_fn='strong_wolfe')\n"
        "    def f():\n"
        "        opt.zero_grad()\n"
        "        loss = -torch.log_softmax(X @ theta, 1)[torch.arange(len(X)), train_y].mean() + weight_decay / 2 * ((theta * mask) ** 2).sum()\n"
        "        loss.backward()\n"
        "        return loss\n"
        "    opt.step(f)\n"
        "    return float(((T @ theta).argmax(1) == test_y).double().mean())\n")),
    # another correct decoder: no GRU state carried, the whole prefix decoded again at every step
    "12": ("ex3_greedy_decode", (
        "@torch.no_grad()\n"
        "def greedy_decode(model, z, max_len):\n"
        "    rows = [[BOS] for _ in range(len(z))]\n"
        "    done = [False] * len(z)\n"
        "    for _ in range(max_len + 1):\n"
        "        logits, _ = model.decode(z, torch.tensor(rows))\n"
        "        last = logits[:, -1].clone()\n"
        "        last[:, [PAD, BOS, UNK]] = -math.inf\n"
        "        nxt = last.argmax(-1).tolist()\n"
        "        for r, t in zip(rows, nxt):\n"
        "            r.append(t)\n"
        "        done = [d or t == EOS for d, t in zip(done, nxt)]\n"
        "        if all(done):\n"
        "            break\n"
        "    out = [r[1:] for r in rows]\n"
        "    return [r[: r.index(EOS)] if EOS in r else r[:max_len] for r in out]\n")),
    # the quiz, answered in capitals and with stray spaces: the same letters
    "13": ("ex1_quiz", 'QUIZ = {"q1": "B", "q2": " c", "q3": "A ", "q4": "d", "q5": "B", "q6": "c"}\n'),
}
WRONG = {  # wrong answers that the kernel's own checks would catch, if they were allowed to
    "01": "def pca_fit(X, k):\n    _, _, Vh = torch.linalg.svd(X, full_matrices=False)   # not centred\n    return X.mean(0), Vh[:k].T\n",
    "02": ("def kl_monte_carlo(mu_q, logvar_q, mu_p, logvar_p, n_samples, generator=None):\n"
           "    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0).sum(-1)\n"
           "    return kl + 1e-3 * torch.randn(kl.shape, generator=generator, dtype=kl.dtype) / math.sqrt(n_samples)\n"),
    "03": ("def reparameterize(mu, logvar, eps):\n"
           "    return (mu + torch.exp(0.5 * logvar) * eps).detach()     # right values, no gradient to mu or logvar\n"),
    "04": ("class MyVAE(nn.Module):\n"
           "    def __init__(self, image_shape=(1, 28, 28), hidden=400, latent=20):\n"
           "        super().__init__()\n"
           "        self.image_shape, self.latent = tuple(image_shape), latent\n"
           "        self.enc = nn.Linear(math.prod(self.image_shape), hidden)\n"
           "        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)\n"
           "        self.dec1, self.dec2 = nn.Linear(latent, hidden), nn.Linear(hidden, math.prod(self.image_shape))\n"
           "    def encode(self, x):\n"
           "        h = torch.relu(self.enc(x.flatten(1)))\n"
           "        return self.mu(h), self.logvar(h)\n"
           "    def reparameterize(self, mu, logvar, eps):\n        return mu + torch.exp(0.5 * logvar) * eps\n"
           "    def decode(self, z):\n        return self.dec2(torch.relu(self.dec1(z))).view(-1, *self.image_shape)\n"
           "    def neg_elbo(self, x, eps):\n"
           "        mu, logvar = self.encode(x)\n"
           "        logits = self.decode(self.reparameterize(mu, logvar, eps))\n"
           "        recon = F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).mean(1)   # the trap\n"
           "        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)\n"
           "        return (recon + kl).mean(), recon, kl\n"),
    "07": ("def mig_score(codes, factors, n_bins=20):\n"
           "    lo, hi = codes.double().min(0).values, codes.double().max(0).values\n"
           "    bins = ((codes.double() - lo) / ((hi - lo) / n_bins)).floor().long().clamp(0, n_bins - 1)\n"
           "    mi = torch.tensor([[mutual_information(bins[:, j], factors[:, k]) for k in range(factors.shape[1])]\n"
           "                       for j in range(codes.shape[1])], dtype=torch.float64)\n"
           "    top2 = mi.topk(2, dim=0).values\n"
           "    gaps = top2[0] - top2[1]                      # not divided by H(v_k)\n"
           "    return float(gaps.mean()), gaps\n"),
    "08": ("def fit_probe(features, labels, n_classes, steps=200, lr=0.5):\n"
           "    x = features.double()\n"
           "    mean, std = x.mean(0), x.std(0) + 1e-6              # divides by N - 1, not N\n"
           "    x = (x - mean) / std\n"
           "    target = F.one_hot(labels.long(), n_classes).double()\n"
           "    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64)\n"
           "    b = torch.zeros(n_classes, dtype=torch.float64)\n"
           "    for _ in range(steps):\n"
           "        g = (torch.softmax(x @ w + b, dim=1) - target) / len(x)\n"
           "        w, b = w - lr * (x.T @ g), b - lr * g.sum(0)\n"
           "    return w, b, mean, std\n"),
    "09": ("def quantize(z_e, codebook):\n"
           "    b, d, h, w = z_e.shape\n"
           "    flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)\n"
           "    codes = ((flat[:, None] - codebook[None]) ** 2).sum(-1).argmin(1).view(b, h, w)\n"
           "    return codebook[codes].permute(0, 3, 1, 2), codes          # no straight-through: the encoder gets no gradient\n"),
    "10": ("def hierarchical_elbo(model, x, eps2, eps1):\n"
           "    with torch.no_grad():                                       # right values, no gradient to train with\n"
           "        h1 = model.bottom_up1(x.flatten(1))\n"
           "        mu2, lv2 = model.q_z2(model.bottom_up2(h1))\n"
           "        t = model.top_down(mu2 + torch.exp(0.5 * lv2) * eps2)\n"
           "        pmu, plv = model.p_z1(t)\n"
           "        mu1, lv1 = model.q_z1(torch.cat([h1, t], -1))\n"
           "        logits = model.decoder(mu1 + torch.exp(0.5 * lv1) * eps1)\n"
           "        recon = F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).sum(1)\n"
           "        kl_1 = 0.5 * (plv - lv1 + (lv1.exp() + (mu1 - pmu) ** 2) / plv.exp() - 1).sum(1)\n"
           "        kl_2 = 0.5 * (lv2.exp() + mu2 ** 2 - 1 - lv2).sum(1)\n"
           "    return recon, kl_1, kl_2\n"),
    "11": ("def linear_probe(train_f, train_y, test_f, test_y, weight_decay):\n"
           "    c = int(max(train_y.max(), test_y.max())) + 1\n"
           "    W = torch.zeros(train_f.shape[1], c, requires_grad=True)\n"
           "    b = torch.zeros(c, requires_grad=True)\n"
           "    opt = torch.optim.SGD([W, b], lr=0.05)\n"
           "    for _ in range(10):                                          # stopped long before the optimum\n"
           "        opt.zero_grad()\n"
           "        (F.cross_entropy(train_f @ W + b, train_y) + weight_decay / 2 * (W ** 2).sum()).backward()\n"
           "        opt.step()\n"
           "    return float(((test_f @ W + b).argmax(1) == test_y).double().mean())\n"),
    "12": ("@torch.no_grad()\n"
           "def greedy_decode(model, z, max_len):\n"
           "    token, rows = torch.full((len(z), 1), BOS), []\n"
           "    for _ in range(max_len + 1):\n"
           "        logits, _ = model.decode(z, token, None)      # the GRU state is dropped: every step starts afresh\n"
           "        last = logits[:, -1].clone()\n"
           "        last[:, [PAD, BOS, UNK]] = -math.inf\n"
           "        token = last.argmax(-1, keepdim=True)\n"
           "        rows.append(token[:, 0])\n"
           "    rows = torch.stack(rows, 1).tolist()\n"
           "    return [r[: r.index(EOS)] if EOS in r else r[:max_len] for r in rows]\n"),
    "13": 'QUIZ = {"q1": "a", "q2": "c", "q3": "a", "q4": "d", "q5": "b", "q6": "c"}\n',   # q1 wrong
}


def _with_answer(nb, exercise, source, swallow=False):
    nb = nbformat.from_dict(nb)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise]
    cell.source = source
    if swallow:  # every error in every later cell is swallowed: the kernel's asserts can no longer fail
        from adversarial.builders import CASES
        nb.cells.insert(2, nbformat.v4.new_code_cell(CASES["ast_transformer"][1]))
    return nb


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("number", sorted(ALTERNATIVES))
def test_reports_keep_another_correct_answer_and_fail_a_wrong_one_the_kernel_let_through(tmp_path, monkeypatch, number):
    monkeypatch.setenv("VAE_COURSE_QUICK", "1")
    lesson = next(ls for ls in LESSONS if ls.number == number)
    root = tmp_path / "course"
    shutil.copytree(lesson.solution_dir, root / "solutions" / lesson.name)
    shutil.copy2(h.REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    course_lesson = Lesson(lesson.name, root)
    honest = h.answer_exercises(lesson.release, lesson.solution)
    exercise, source = ALTERNATIVES[number]
    test_id = h.graded_cell_after(lesson.solution, exercise)

    def grade(nb, name, **options):
        path = tmp_path / name / lesson.filename
        path.parent.mkdir()
        nbformat.write(nb, path)
        res = grade_lesson(course_lesson, path, GradeOptions(timeout=300, **options))
        assert res.status == "graded", res.message
        return {e.grade_id: e for e in res.exercises}

    other = grade(_with_answer(honest, exercise, source), "other")
    assert all(e.passed for e in other.values()), [(g, e.message) for g, e in other.items() if not e.passed]
    cheat = _with_answer(honest, exercise, WRONG[number], swallow=True)
    judged = grade(cheat, "cheat")
    assert not judged[test_id].passed and "judged against the course's solution" in judged[test_id].message
    assert all(e.passed for g, e in judged.items() if g != test_id)
    control = grade(cheat, "control", judge=False)  # the kernel alone is fooled
    assert control[test_id].passed
