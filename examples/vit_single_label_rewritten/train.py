"""Train a ViT on an ImageFolder dataset: data/train/<class>/*.png, data/val/<class>/*.png."""
import argparse
import json
import os

import timm
import torch
import torch.optim as optim
from torchvision import datasets, transforms

from utils import evaluate, train_one_epoch


def create_model(num_classes):
    # a ViT sized for 32x32 images so it trains on a CPU; pretrained=False: nothing is downloaded
    return timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        num_classes=num_classes,
        img_size=32,
        patch_size=8,
        depth=3,
        embed_dim=64,
        num_heads=2,
        mlp_ratio=2,
        global_pool="avg",
    )


def main(args):
    device = torch.device(args.device if torch.cuda.is_available() else "cpu")
    os.makedirs("./weights", exist_ok=True)

    data_transform = {
        "train": transforms.Compose(
            [transforms.RandomResizedCrop(32, scale=(0.8, 1.0)), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
        ),
        "val": transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor()]),
    }
    train_dataset = datasets.ImageFolder(os.path.join(args.data_path, "train"), transform=data_transform["train"])
    val_dataset = datasets.ImageFolder(os.path.join(args.data_path, "val"), transform=data_transform["val"])

    # index -> class name, read back by predict.py
    class_indict = {str(index): name for name, index in train_dataset.class_to_idx.items()}
    with open("class_indices.json", "w") as json_file:
        json.dump(class_indict, json_file, indent=4)

    nw = min([os.cpu_count(), args.batch_size if args.batch_size > 1 else 0, 8])
    train_loader = torch.utils.data.DataLoader(
        train_dataset, batch_size=args.batch_size, shuffle=True, pin_memory=True, num_workers=nw
    )
    val_loader = torch.utils.data.DataLoader(
        val_dataset, batch_size=args.batch_size, shuffle=False, pin_memory=True, num_workers=nw
    )

    model = create_model(num_classes=len(class_indict)).to(device)
    pg = [p for p in model.parameters() if p.requires_grad]
    optimizer = optim.AdamW(pg, lr=args.lr, weight_decay=5e-2)

    best_acc = 0.0
    for epoch in range(args.epochs):
        train_loss, train_acc = train_one_epoch(
            model=model, optimizer=optimizer, data_loader=train_loader, device=device, epoch=epoch
        )
        val_loss, val_acc = evaluate(model=model, data_loader=val_loader, device=device, epoch=epoch)

        if val_acc > best_acc:
            best_acc = val_acc
            torch.save(model.state_dict(), "./weights/best_model.pth")
    print("best val acc: {:.3f}".format(best_acc))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--data-path", type=str, default="./data")
    parser.add_argument("--device", default="cuda:0", help="device id (i.e. 0 or 0,1 or cpu)")
    opt = parser.parse_args()
    main(opt)
