"""Training and evaluation loops for one epoch (the WZMIAOMIAO deep-learning-for-image-processing style)."""
import sys

import torch

THRESHOLD = 0.5  # multi-label decision threshold on sigmoid outputs; tune per class on validation data


def train_one_epoch(model, optimizer, data_loader, device, epoch):
    model.train()
    loss_function = torch.nn.BCEWithLogitsLoss()
    accu_loss = torch.zeros(1).to(device)  # accumulated loss
    accu_num = torch.zeros(1).to(device)  # number of correctly predicted samples
    optimizer.zero_grad()

    sample_num = 0
    for step, data in enumerate(data_loader):
        images, labels = data
        sample_num += images.shape[0]

        pred = model(images.to(device))
        pred_classes = torch.sigmoid(pred) > THRESHOLD
        accu_num += torch.eq(pred_classes, labels.to(device).bool()).all(dim=1).sum()

        loss = loss_function(pred, labels.to(device).float())
        loss.backward()
        accu_loss += loss.detach()

        print(
            "[train epoch {}] loss: {:.3f}, acc: {:.3f}".format(
                epoch, accu_loss.item() / (step + 1), accu_num.item() / sample_num
            )
        )

        if not torch.isfinite(loss):
            print("WARNING: non-finite loss, ending training ", loss)
            sys.exit(1)

        optimizer.step()
        optimizer.zero_grad()

    return accu_loss.item() / (step + 1), accu_num.item() / sample_num


@torch.no_grad()
def evaluate(model, data_loader, device, epoch=0):
    loss_function = torch.nn.BCEWithLogitsLoss()

    model.eval()

    accu_num = torch.zeros(1).to(device)  # number of correctly predicted samples
    accu_loss = torch.zeros(1).to(device)  # accumulated loss

    sample_num = 0
    for step, data in enumerate(data_loader):
        images, labels = data
        sample_num += images.shape[0]

        pred = model(images.to(device))
        pred_classes = torch.sigmoid(pred) > THRESHOLD
        accu_num += torch.eq(pred_classes, labels.to(device).bool()).all(dim=1).sum()

        loss = loss_function(pred, labels.to(device).float())
        accu_loss += loss

    print(
        "[valid epoch {}] loss: {:.3f}, acc: {:.3f}".format(
            epoch, accu_loss.item() / (step + 1), accu_num.item() / sample_num
        )
    )
    return accu_loss.item() / (step + 1), accu_num.item() / sample_num
